package vmrun

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/qemu"
)

// ExitKilled is the status kill gives a workload, as docker's: 128+SIGKILL.
const ExitKilled = 137

// Status is status.json: how a VM ended, written by its supervisor once
// QEMU has.
type Status struct {
	// Exit is the workload's status, nil when none came (QEMU died, or
	// the guest stopped without ginit's exit line): the VM is dead.
	Exit *int `json:"exit,omitempty"`
	// From says where Exit came from: "channel" (the control channel's
	// exited event, the full value), "console" (ginit's exit line, the
	// full value, for an image without the channel), "isa-debug-exit"
	// (QEMU's own status, 7 bits of it, never 0), "kill" (ginitctl kill,
	// 137).
	From    string    `json:"from,omitempty"`
	QEMU    string    `json:"qemu"` // how QEMU ended, as Go's os/exec says it
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// Where a workload's status came from.
const (
	FromChannel   = "channel"
	FromConsole   = "console"
	FromDebugExit = "isa-debug-exit"
	FromKill      = "kill"
)

// workloadStatus is the workload's status from what the VM left: the
// exited event its ginit sent on the control channel (heard, nil when
// none came), which has the full value; else ginit's exit line on the
// console, which has it too; else, when kill ended it, 137; else a status
// from 1 up that QEMU's isa-debug-exit carries (exited is QEMU's exit
// code, -1 when a signal ended it). isa-debug-exit's 0 is QEMU's exit 1,
// which QEMU also exits with when it fails on its own (a locked disk, a
// virtiofsd gone), so it never counts: a QEMU failure must not read as
// success. Else none.
func workloadStatus(heard *int, consoleTail string, exited int, killed bool) (*int, string) {
	if heard != nil {
		return heard, FromChannel
	}
	if st := qemu.ExitLine(consoleTail); st >= 0 {
		return &st, FromConsole
	}
	if killed {
		st := ExitKilled
		return &st, FromKill
	}
	if st := (qemu.Result{QEMUExit: exited}).DebugExitStatus(); st > 0 {
		return &st, FromDebugExit
	}
	return nil, ""
}

// consoleTail is the end of the console log, where ginit's exit line is.
func (dir VMDir) consoleTail() string {
	const tail = 64 << 10
	f, err := os.Open(dir.ConsoleLog())
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		if _, err := f.Seek(-tail, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Phase is where a VM is in its life.
type Phase string

// The phases, as ps shows them.
const (
	Created Phase = "created" // made, QEMU not started yet
	Running Phase = "running" // QEMU runs
	Exited  Phase = "exited"  // ended with the workload's status
	Dead    Phase = "dead"    // QEMU ended without a workload status
)

// Live is a VM's state as it is now.
type Live struct {
	Phase   Phase     `json:"phase"`
	Exit    *int      `json:"exit,omitempty"`
	PID     int       `json:"pid,omitempty"` // QEMU's, while it runs
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	// Guest is the running VM's status as its ginit reports it on the
	// control channel (LiveGuest): the workload's phase, pid, readiness,
	// boot timing and, once it ended, its status.
	Guest *ctlproto.Status `json:"guest,omitempty"`
}

// String is the state as ps shows it: a running VM's guest phase in
// parentheses when its ginit answered ("running (ready)").
func (l Live) String() string {
	switch {
	case l.Phase == Exited && l.Exit != nil:
		return fmt.Sprintf("exited (%d)", *l.Exit)
	case l.Phase == Running && l.Guest != nil:
		return fmt.Sprintf("running (%s)", guestPhase(*l.Guest))
	}
	return string(l.Phase)
}

// guestPhase says where the workload is: booting, starting, started,
// ready, stopping, or exited N while the machine shuts down.
func guestPhase(st ctlproto.Status) string {
	switch {
	case st.Phase == ctlproto.PhaseExited && st.Exit != nil:
		return fmt.Sprintf("exited %d", *st.Exit)
	case st.Phase == ctlproto.PhaseRunning && st.Ready:
		return "ready"
	case st.Phase == ctlproto.PhaseRunning:
		return "started"
	}
	return st.Phase
}

// Over reports whether the VM has ended, with a status or without.
func (l Live) Over() bool { return l.Phase == Exited || l.Phase == Dead }

// Live reads the VM's state: its status.json when it has ended; else
// running while the QEMU in qemu.pid is alive (and is this VM's: it runs
// in this directory); once that QEMU is gone, exited when the console has
// ginit's exit line (or kill was asked for), else dead.
func (dir VMDir) Live() (Live, error) {
	if _, err := os.Stat(string(dir)); err != nil {
		return Live{}, fmt.Errorf("no VM %q", dir.Name())
	}
	var st Status
	if err := readJSON(dir.Status(), &st); err == nil {
		l := Live{Phase: Dead, Exit: st.Exit, Started: st.Started, Ended: st.Ended}
		if st.Exit != nil {
			l.Phase = Exited
		}
		return l, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Live{}, err
	}
	pid, started, err := dir.qemuPID()
	if errors.Is(err, fs.ErrNotExist) {
		return Live{Phase: Created}, nil
	}
	if err != nil {
		return Live{}, err
	}
	if dir.runs(pid) {
		return Live{Phase: Running, PID: pid, Started: started}, nil
	}
	// QEMU is gone and its supervisor wrote nothing (it died too, or is
	// about to): the console still says how the workload ended.
	_, kerr := os.Stat(dir.Killed())
	if st, _ := workloadStatus(nil, dir.consoleTail(), -1, kerr == nil); st != nil {
		return Live{Phase: Exited, Exit: st, Started: started}, nil
	}
	return Live{Phase: Dead, Started: started}, nil
}

// qemuPID reads qemu.pid, and when it was written: when QEMU started.
func (dir VMDir) qemuPID() (int, time.Time, error) {
	b, err := os.ReadFile(dir.PID())
	if err != nil {
		return 0, time.Time{}, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, time.Time{}, fmt.Errorf("%s: %q: not a process id", dir.PID(), b)
	}
	var started time.Time
	if fi, err := os.Stat(dir.PID()); err == nil {
		started = fi.ModTime()
	}
	return pid, started, nil
}

// runs reports whether pid is alive and is this VM's QEMU: a process
// that reused the id runs elsewhere.
func (dir VMDir) runs(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie has no working directory; a reused id has another one.
	cwd, err := os.Stat(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	here, err := os.Stat(string(dir))
	return err == nil && os.SameFile(cwd, here)
}
