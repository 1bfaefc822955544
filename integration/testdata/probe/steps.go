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
// PATH exists, exit=CODE exits.
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
			for {
				if _, err := os.Stat(rest); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
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
