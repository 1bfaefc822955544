//go:build !amd64

package shutdown

import "errors"

// DebugExit is only wired up for QEMU's x86 isa-debug-exit device.
func DebugExit(port uint16, status int) error {
	return errors.New("isa-debug-exit is only supported on amd64")
}

// HasPVPanic: only QEMU's x86 ISA pvpanic device is wired up.
func HasPVPanic() bool { return false }

// ReportFailure is only wired up for QEMU's x86 ISA pvpanic device.
func ReportFailure() error { return errors.New("pvpanic is only supported on amd64") }
