package nsrun

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capNames are the capabilities by number, as capabilities(7) names them.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities is the set Docker leaves a container, plus
// CAP_SYS_BOOT so that a nested init's poweroff and reboot still reach
// chrootrun (reboot(2) in a PID namespace only ends that namespace). Each
// call returns a fresh slice.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_SYS_BOOT",
	}
}

// ParseCapabilities turns names ("CAP_CHOWN", "chown", or a number) into a
// bit set; "ALL" is every capability.
func ParseCapabilities(names []string) (uint64, error) {
	var set uint64
	for _, n := range names {
		n = strings.ToUpper(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		if n == "ALL" {
			set = ^uint64(0)
			continue
		}
		if !strings.HasPrefix(n, "CAP_") {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 && i < 64 {
				set |= 1 << i
				continue
			}
			n = "CAP_" + n
		}
		found := false
		for i, c := range capNames {
			if c == n {
				set |= 1 << i
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("capability %q: unknown", n)
		}
	}
	return set, nil
}

// CapabilityNames lists the names in a bit set, for messages.
func CapabilityNames(set uint64) []string {
	var out []string
	for i, c := range capNames {
		if set&(1<<i) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// lastCap is the highest capability the kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return len(capNames) - 1
}

// dropBoundingSet removes from this thread's bounding set every capability
// not in keep: not even a setuid-root binary gets them back.
func dropBoundingSet(keep uint64) error {
	for c := 0; c <= lastCap(); c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set (PR_CAPBSET_DROP): %w", c, err)
		}
	}
	return nil
}

// setCapabilities limits this thread's permitted, effective and inheritable
// sets to keep, and clears its ambient set.
func setCapabilities(keep uint64) error {
	var have uint64
	for c := 0; c <= lastCap(); c++ {
		have |= 1 << c
	}
	keep &= have
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(keep), Permitted: uint32(keep), Inheritable: uint32(keep)},
		{Effective: uint32(keep >> 32), Permitted: uint32(keep >> 32), Inheritable: uint32(keep >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset %v: %w", CapabilityNames(keep), err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	return nil
}
