package shutdown

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

func outb(port uint16, val uint8)

// DebugExit writes status to QEMU's isa-debug-exit port, which ends QEMU
// with exit status (status<<1)|1. Without the device the write does nothing.
func DebugExit(port uint16, status int) error {
	return writePort(port, uint8(status))
}

// pvpanicACPI is the ACPI device of QEMU's ISA pvpanic (ID QEMU0001), and
// pvpanicPort its I/O port: libvirt's and KubeVirt's <panic model='isa'>.
const (
	pvpanicACPI  = "/sys/bus/acpi/devices/QEMU0001:00"
	pvpanicPort  = 0x505
	pvpanicFired = 1 // "a guest panic happened and should be processed by the host"
)

// HasPVPanic reports whether the machine has QEMU's ISA pvpanic device.
func HasPVPanic() bool {
	_, err := os.Stat(pvpanicACPI)
	return err == nil
}

// ReportFailure tells the host that the machine failed through QEMU's ISA
// pvpanic device, which QEMU turns into its panic action (-action
// panic=exit-failure ends it with status 1; libvirt, and KubeVirt with it,
// marks the domain crashed). Only the port is written: no kernel panic, no
// module. Without the device the write goes nowhere.
func ReportFailure() error {
	return writePort(pvpanicPort, pvpanicFired)
}

// writePort writes one byte to an x86 I/O port. Kernels without /dev/port
// are the rule, so PID 1 asks for the port with ioperm(2) and writes it
// itself.
func writePort(port uint16, val uint8) error {
	// ioperm(2) grants the port to the calling thread only: the write must
	// run on that same thread, or it faults.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Ioperm(int(port), 1, 1); err != nil {
		return fmt.Errorf("ioperm %#x: %w", port, err)
	}
	outb(port, val)
	return nil
}
