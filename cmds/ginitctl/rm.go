package main

import (
	"fmt"
	"io"
)

const rmHead = `Usage: ginitctl rm [flags] NAME...

Removes VMs: their overlay, run document, console log and status. A
running VM is refused unless -f, which kills it first. The image's cached
base stays for the next run (ginitctl prune removes unused ones).

Example:
  ginitctl rm -f web

Flags:
`

func rmCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("rm", &state)
	force := fs.Bool("f", false, "kill a running VM and remove it")
	fs.BoolVar(force, "force", false, "same as -f")
	if status, done := parse(fs, args, stdout, stderr, rmHead, ""); done {
		return status
	}
	if fs.NArg() == 0 {
		return fail(stderr, errWant("rm", "a NAME"))
	}
	code := 0
	for _, name := range fs.Args() {
		if err := state.dir.VM(name).Remove(*force); err != nil {
			code = fail(stderr, err)
			continue
		}
		fmt.Fprintln(stdout, name)
	}
	return code
}
