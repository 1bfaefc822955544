package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

const psHead = `Usage: ginitctl ps [flags]

Lists the running VMs, newest first, as docker ps lists containers: name,
image, status, ports and uptime. A running VM's status says where its
workload is, as its ginit reports it on the control channel: running
(booting), (starting), (started), (ready), (stopping), or (exited N) while
the machine shuts down; plain running when the channel does not answer (an
image without it). An ended VM is exited (N) with the workload's status,
dead when QEMU ended without one; created is before QEMU starts.

Example:
  ginitctl ps -a

Flags:
`

func psCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("ps", &state)
	all := fs.Bool("a", false, "also the VMs that have ended")
	fs.BoolVar(all, "all", false, "same as -a")
	if status, done := parse(fs, args, stdout, stderr, psHead, ""); done {
		return status
	}
	dirs, err := state.dir.List()
	if err != nil {
		return fail(stderr, err)
	}
	// Each running VM's ginit is asked at once: a VM that does not answer
	// costs GuestWait, not GuestWait per VM.
	lives := make([]vmrun.Live, len(dirs))
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lives[i], _, errs[i] = d.LiveGuest(vmrun.GuestWait)
		}()
	}
	wg.Wait()
	tw := tabwriter.NewWriter(stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tIMAGE\tSTATUS\tPORTS\tUPTIME")
	now := time.Now()
	for i, d := range dirs {
		l := lives[i]
		if errs[i] != nil || (l.Over() && !*all) {
			continue
		}
		info, _ := d.ReadInfo()
		uptime := "-"
		if l.Phase == vmrun.Running && !l.Started.IsZero() {
			uptime = age(now.Sub(l.Started))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name(), info.Image, l, strings.Join(info.Ports, ","), uptime)
	}
	if err := tw.Flush(); err != nil {
		return fail(stderr, err)
	}
	return 0
}

// age prints a duration as ps does: its largest unit.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
