package main

import (
	"io"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

const logsHead = `Usage: ginitctl logs [flags] NAME

Prints a VM's serial console from its boot on: the workload's output,
ginit's lines and the kernel's errors.

Example:
  ginitctl logs -f web

Flags:
`

func logsCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("logs", &state)
	follow := fs.Bool("f", false, "follow: go on printing until the VM ends")
	fs.BoolVar(follow, "follow", false, "same as -f")
	if status, done := parse(fs, args, stdout, stderr, logsHead, ""); done {
		return status
	}
	if fs.NArg() != 1 {
		return fail(stderr, errWant("logs", "one NAME"))
	}
	dir, err := state.dir.Lookup(fs.Arg(0))
	if err != nil {
		return fail(stderr, err)
	}
	console, err := dir.OpenConsole()
	if err != nil {
		return fail(stderr, err)
	}
	defer console.Close()
	var until <-chan struct{}
	if *follow {
		until = dir.Ended()
	}
	if err := vmrun.Follow(console, stdout, until); err != nil {
		return fail(stderr, err)
	}
	return 0
}
