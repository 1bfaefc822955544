// Package shutdown ends the machine the way PID 1 must: stop every process
// (signal, grace, SIGKILL), sync, unmount in reverse order, and call
// reboot(2). It also carries the exit status out through QEMU's
// isa-debug-exit device.
package shutdown

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// pfKthread is PF_KTHREAD in /proc/PID/stat's flags field.
const pfKthread = 0x00200000

// UserProcesses lists the pids of every process but PID 1 and kernel threads,
// read from procDir (/proc).
func UserProcesses(procDir string) []int {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // gone already
		}
		if kthread, ok := isKernelThread(string(b)); ok && !kthread {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Session returns the session id of process pid, read from procDir
// (/proc), or 0 when the process is gone.
func Session(procDir string, pid int) int {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	sid, _ := sessionOf(string(b))
	return sid
}

// sessionOf reads the session field of a /proc/PID/stat line.
func sessionOf(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 4 {
		return 0, false
	}
	sid, err := strconv.Atoi(f[3])
	return sid, err == nil
}

// isKernelThread reads the flags field of a /proc/PID/stat line. The comm
// field may hold spaces and parentheses, so fields count from the last ')'.
func isKernelThread(stat string) (kthread, ok bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return false, false
	}
	f := strings.Fields(stat[i+1:])
	// After comm: state(0) ppid(1) pgrp(2) session(3) tty_nr(4) tpgid(5) flags(6)
	if len(f) < 7 {
		return false, false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return false, false
	}
	// A zombie has no mm either; it is a user process waiting to be reaped.
	return flags&pfKthread != 0, true
}

// StopAll sends sig to every process but PID 1, waits up to grace for them to
// exit, then SIGKILLs what is left and waits for that too. reap is called
// while waiting so exited processes do not linger as zombies. It returns how
// many processes had to be killed.
func StopAll(sig unix.Signal, grace time.Duration, reap func()) int {
	if len(UserProcesses("/proc")) == 0 {
		return 0
	}
	_ = unix.Kill(-1, sig)
	_ = unix.Kill(-1, unix.SIGCONT) // stopped processes cannot act on sig
	if waitGone(grace, reap) {
		return 0
	}
	left := len(UserProcesses("/proc"))
	_ = unix.Kill(-1, unix.SIGKILL)
	waitGone(5*time.Second, reap)
	return left
}

func waitGone(d time.Duration, reap func()) bool {
	deadline := time.Now().Add(d)
	for {
		if reap != nil {
			reap()
		}
		if len(UserProcesses("/proc")) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Action is the reboot(2) command a shutdown ends in.
type Action int

// What the machine does at the end.
const (
	PowerOff Action = iota
	Reboot
	Halt
	// Kexec starts the kernel loaded with kexec_file_load(2).
	Kexec
)

func (a Action) String() string {
	switch a {
	case Reboot:
		return "reboot"
	case Halt:
		return "halt"
	case Kexec:
		return "kexec"
	}
	return "poweroff"
}

func (a Action) cmd() int {
	switch a {
	case Reboot:
		return unix.LINUX_REBOOT_CMD_RESTART
	case Halt:
		return unix.LINUX_REBOOT_CMD_HALT
	case Kexec:
		return unix.LINUX_REBOOT_CMD_KEXEC
	}
	return unix.LINUX_REBOOT_CMD_POWER_OFF
}

// Reboot syncs and calls reboot(2). It returns only if the call fails.
func (a Action) Reboot() error {
	unix.Sync()
	if err := unix.Reboot(a.cmd()); err != nil {
		return fmt.Errorf("reboot(%s): %w", a, err)
	}
	return nil
}

// OnQEMU says whether the machine is a QEMU VM.
func OnQEMU() bool { return onQEMU("/sys") }

// onQEMU reads it under sys (/sys): from the DMI vendor on pc and q35, and
// from fw_cfg's ACPI device (QEMU0002) on microvm, which has no SMBIOS.
func onQEMU(sys string) bool {
	b, err := os.ReadFile(filepath.Join(sys, "class/dmi/id/sys_vendor"))
	if err == nil {
		return strings.TrimSpace(string(b)) == "QEMU"
	}
	_, err = os.Stat(filepath.Join(sys, "bus/acpi/devices/QEMU0002:00"))
	return err == nil
}
