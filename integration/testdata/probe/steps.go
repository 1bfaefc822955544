package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// steps runs each argument as one check and prints its outcome, so that
// one boot can check many things: cat=PATH prints PATH's lines, write=PATH=TEXT
// writes TEXT to PATH and says whether that worked, stopwait=PATH waits
// for a stop signal as the stopwait command does, await=PATH waits until
// PATH exists (a minute at most, then it exits 1), exit=CODE exits.
func steps(args []string) {
	for _, a := range args {
		op, rest, _ := strings.Cut(a, "=")
		switch op {
		case "cat":
			b, err := os.ReadFile(rest)
			if err != nil {
				fmt.Printf("probe: cat %s: %v\n", rest, err)
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				fmt.Printf("probe: %s: %s\n", rest, line)
			}
		case "write":
			path, text, _ := strings.Cut(rest, "=")
			if err := os.WriteFile(path, []byte(text+"\n"), 0o644); err != nil {
				fmt.Printf("probe: write %s: %v\n", path, err)
			} else {
				fmt.Printf("probe: write %s: ok\n", path)
			}
		case "stopwait":
			stopWait(rest)
		case "await":
			if !await(rest, time.Minute) {
				fmt.Printf("probe: await %s: not there after a minute\n", rest)
				os.Exit(1)
			}
			fmt.Printf("probe: await %s: ok\n", rest)
		case "exit":
			code, _ := strconv.Atoi(rest)
			os.Exit(code)
		default:
			fmt.Printf("probe: unknown step %q\n", a)
		}
	}
}

// await says whether path exists within limit.
func await(path string, limit time.Duration) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
	}
	return false
}
