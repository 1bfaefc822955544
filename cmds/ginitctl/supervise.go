package main

import (
	"io"
	"os"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

// superviseName is the hidden command run starts each VM's supervisor
// with: ginitctl supervise --state DIR NAME, its report on descriptor 3.
const superviseName = "supervise"

func superviseCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags(superviseName, &state)
	if status, done := parse(fs, args, stdout, stderr, "Usage: ginitctl supervise --state DIR NAME\n\nBoots the VM and sees it to its end; run starts it.\n\nFlags:\n", ""); done {
		return status
	}
	if fs.NArg() != 1 {
		return fail(stderr, errWant(superviseName, "a NAME"))
	}
	dir, err := state.dir.Lookup(fs.Arg(0))
	if err != nil {
		return fail(stderr, err)
	}
	report := os.NewFile(3, "report")
	if err := vmrun.Supervise(dir, report); err != nil {
		return fail(stderr, err)
	}
	return 0
}
