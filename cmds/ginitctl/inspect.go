package main

import (
	"encoding/json"
	"io"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

const inspectHead = `Usage: ginitctl inspect NAME...

Prints VMs as a JSON array, as docker inspect does: each one's vm.json
(image, image key, options with the environment's names but not its
values, QEMU's argv, ports, the disk chain, created) and its live state.

Example:
  ginitctl inspect web

Flags:
`

// inspected is what inspect prints of a VM.
type inspected struct {
	vmrun.Info
	State vmrun.Live `json:"state"`
}

func inspectCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("inspect", &state)
	if status, done := parse(fs, args, stdout, stderr, inspectHead, ""); done {
		return status
	}
	if fs.NArg() == 0 {
		return fail(stderr, errWant("inspect", "a NAME"))
	}
	out := []inspected{}
	code := 0
	for _, name := range fs.Args() {
		dir := state.dir.VM(name)
		info, err := dir.ReadInfo()
		var l vmrun.Live
		if err == nil {
			l, err = dir.Live()
		}
		if err != nil {
			code = fail(stderr, err)
			continue
		}
		out = append(out, inspected{info, l})
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fail(stderr, err)
	}
	return code
}
