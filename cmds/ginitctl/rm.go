package main

import (
	"fmt"
	"io"

	"github.com/ginit-dev/ginit/internal/vmrun"
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
	names, status, done := parseNames(fs, args, stdout, stderr, rmHead)
	if done {
		return status
	}
	return eachVM(state.dir, names, stderr, func(dir vmrun.VMDir) error {
		if err := dir.Remove(*force); err != nil {
			return err
		}
		fmt.Fprintln(stdout, dir.Name())
		return nil
	})
}
