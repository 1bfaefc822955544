package main

import (
	"fmt"
	"io"

	"github.com/ginit-dev/ginit/internal/units"
)

const pruneHead = `Usage: ginitctl prune [flags]

Removes the VMs that have ended (exited or dead), then the cached base
disks no remaining VM uses, and prints what it freed.

Example:
  ginitctl prune

Flags:
`

func pruneCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("prune", &state)
	if status, done := parse(fs, args, stdout, stderr, pruneHead, ""); done {
		return status
	}
	p, err := state.dir.Prune()
	for _, name := range p.VMs {
		fmt.Fprintf(stdout, "removed VM %s\n", name)
	}
	for _, im := range p.Images {
		fmt.Fprintf(stdout, "removed image %s (%s)\n", im.Key, im.Source)
	}
	fmt.Fprintf(stdout, "freed %s\n", units.Bytes(p.Freed))
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}
