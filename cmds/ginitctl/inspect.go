package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

const inspectHead = `Usage: ginitctl inspect NAME...

Prints VMs as a JSON array, as docker inspect does: each one's vm.json
(image, image key, options with the environment's names but not its
values, QEMU's argv, ports, the disk chain, created) and its live state:
for a running VM, "guest" is what its ginit reports on the control
channel (phase, boot timing, the workload's pid, ready, its exit status
once known). A VM whose channel does not answer (an image or a VMM
without it, or a ginit not yet up) is said so on standard error, and its
state is what QEMU and the console tell.

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
		l, guestErr, err := dir.LiveGuest(vmrun.GuestWait)
		if err != nil {
			return err
		}
		if guestErr != nil {
			fmt.Fprintf(stderr, "ginitctl: VM %s: no answer on its control channel (%v): an image or VMM without it, or still booting; its state is QEMU's and the console's\n", dir.Name(), guestErr)
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
