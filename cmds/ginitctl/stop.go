package main

import (
	"fmt"
	"io"
	"time"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

const stopHead = `Usage: ginitctl stop [flags] NAME...

Stops VMs as their power button does: ginit gives the workload its
StopSignal, SIGKILL after the run's --stop-timeout, and powers off. The
request goes over ginit's control channel, which reports the workload's
status as it exits; a VM whose channel does not answer (an image without
it) gets QEMU's power button (QMP system_powerdown). QEMU is killed when
the VM is still up after -t. Prints each VM's status.

Example:
  ginitctl stop -t 60 web

Flags:
`

func stopCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("stop", &state)
	secs := fs.Int("t", -1, "seconds to wait for the VM to power off before killing QEMU (default: its --stop-timeout + 30, for the shutdown under TCG)")
	fs.IntVar(secs, "time", -1, "same as -t")
	names, status, done := parseNames(fs, args, stdout, stderr, stopHead)
	if done {
		return status
	}
	return eachVM(state.dir, names, stderr, func(dir vmrun.VMDir) error {
		grace := time.Duration(*secs) * time.Second
		if *secs < 0 {
			grace = defaultGrace(dir)
		}
		l, removed, err := dir.Stop(grace)
		switch {
		case err != nil:
			return err
		case removed && l.Exit != nil:
			fmt.Fprintf(stdout, "%s: %s, removed (--rm)\n", dir.Name(), l)
		case removed:
			fmt.Fprintf(stdout, "%s: stopped and removed (--rm)\n", dir.Name())
		default:
			fmt.Fprintf(stdout, "%s: %s\n", dir.Name(), l)
		}
		return nil
	})
}

// defaultGrace is the VM's stop timeout and 30 s for the kernel's
// shutdown, which takes seconds under TCG.
func defaultGrace(dir vmrun.VMDir) time.Duration {
	grace := 10 * time.Second
	if info, err := dir.ReadInfo(); err == nil {
		if d, err := time.ParseDuration(info.Config.StopTimeout); err == nil {
			grace = d
		}
	}
	return grace + 30*time.Second
}

const killHead = `Usage: ginitctl kill NAME...

Kills VMs' QEMU at once. The workload's status is 137, as docker kill's.

Example:
  ginitctl kill web

Flags:
`

func killCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("kill", &state)
	names, status, done := parseNames(fs, args, stdout, stderr, killHead)
	if done {
		return status
	}
	return eachVM(state.dir, names, stderr, func(dir vmrun.VMDir) error {
		if err := dir.Kill(); err != nil {
			return err
		}
		fmt.Fprintln(stdout, dir.Name())
		return nil
	})
}
