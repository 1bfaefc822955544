// Command probe is the workload of the VM tests: each subcommand does one
// thing a test checks from the console or the disk afterwards.
//
//	probe write PATH TEXT CODE   write TEXT to PATH, sync, exit CODE
//	probe args ARGS...           print each argument on its own line, quoted
//	probe env                    print uid, gid, groups, cwd and the environment
package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Println("probe: want a subcommand")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "write":
		if len(os.Args) != 5 {
			fmt.Println("probe: write PATH TEXT CODE")
			os.Exit(2)
		}
		code, _ := strconv.Atoi(os.Args[4])
		if err := os.WriteFile(os.Args[2], []byte(os.Args[3]+"\n"), 0o644); err != nil {
			fmt.Println("probe:", err)
			os.Exit(1)
		}
		syscall.Sync()
		fmt.Printf("probe: wrote %s\n", os.Args[2])
		os.Exit(code)
	case "args":
		for i, a := range os.Args[2:] {
			fmt.Printf("probe: arg[%d]=%q\n", i, a)
		}
	case "env":
		wd, _ := os.Getwd()
		groups, _ := os.Getgroups()
		fmt.Printf("probe: uid=%d gid=%d groups=%v cwd=%s\n", os.Getuid(), os.Getgid(), groups, wd)
		for _, kv := range os.Environ() {
			fmt.Printf("probe: env %s\n", kv)
		}
	default:
		fmt.Printf("probe: unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
}
