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
	names, status, done := parseNames(fs, args, stdout, stderr, inspectHead)
	if done {
		return status
	}
	out := []inspected{}
	code := eachVM(state.dir, names, stderr, func(dir vmrun.VMDir) error {
		info, err := dir.ReadInfo()
		if err != nil {
			return err
		}
		l, err := dir.Live()
		if err != nil {
			return err
		}
		out = append(out, inspected{info, l})
		return nil
	})
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fail(stderr, err)
	}
	return code
}
