package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Machine is a QEMU x86 machine type that ginit boots on.
type Machine string

// The machine types. The zero Machine is PC.
const (
	// MicroVM has no PCI and no legacy devices: its virtio devices sit on
	// virtio-mmio transports that ACPI describes (LNRO0005), beside a
	// power button, fw_cfg (QEMU0002), the ISA serial port and
	// isa-debug-exit. It boots faster than PC.
	MicroVM Machine = "microvm"
	PC      Machine = "pc"  // i440FX with PCI, ISA and ACPI
	Q35     Machine = "q35" // Q35 with PCIe, AHCI and ACPI
)

// Machines lists the machine types, the fastest to boot first.
var Machines = []Machine{MicroVM, PC, Q35}

// ParseMachine reads a machine type's name.
func ParseMachine(s string) (Machine, error) {
	for _, m := range Machines {
		if s == string(m) {
			return m, nil
		}
	}
	return "", fmt.Errorf("machine %q: want one of microvm, pc, q35", s)
}

// MachineTypes lists the machine types that QEMU's binary offers, as
// -M help names them: some builds leave microvm out.
func MachineTypes(ctx context.Context, qemu string) ([]string, error) {
	out, err := exec.CommandContext(ctx, qemu, "-M", "help").Output()
	if err != nil {
		return nil, fmt.Errorf("%s -M help: %w", qemu, err)
	}
	return ParseMachineHelp(string(out)), nil
}

// ParseMachineHelp reads the names out of -M help's listing: the first
// word of each line after the heading ("Supported machines are:").
func ParseMachineHelp(help string) []string {
	var names []string
	for i, line := range strings.Split(help, "\n") {
		if f := strings.Fields(line); i > 0 && len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func (m Machine) orPC() Machine {
	if m == "" {
		return PC
	}
	return m
}

// Virtio is the name of the virtio device model on m: model-pci on the
// PCI machines, model-device (virtio-mmio) on microvm. model is QEMU's
// name without the transport, such as virtio-blk or vhost-user-fs.
func (m Machine) Virtio(model string) string {
	if m == MicroVM {
		return model + "-device"
	}
	return model + "-pci"
}

// args select machine m: -M, with microvm's ACPI, which describes its
// virtio-mmio devices to a kernel whose virtio_mmio is a module (Debian's:
// it cannot take them from the command line) and gives it a power button;
// a PCIe bus only for what has no virtio-mmio form, such as NVMe; and
// virtio-mmio's version 2 (virtio 1.0), since its default, the legacy
// version 1, is refused by vhost-user back ends such as virtiofsd.
func (m Machine) args(pcie bool) []string {
	if m != MicroVM {
		return []string{"-M", string(m.orPC())}
	}
	opt := "microvm,acpi=on"
	if pcie {
		opt += ",pcie=on"
	}
	return []string{"-M", opt, "-global", "virtio-mmio.force-legacy=false"}
}

// kernelArgs are the kernel parameters that machine m needs under accel.
// On microvm the kernel restarts by a triple fault (reboot=t): its first
// choice, ACPI's reset register, asks QEMU for a reset while the vCPU runs
// on into the next methods, and under TCG one reboot in a few dozen then
// came up with the old kernel's CR4 and hung in the firmware. microvm's
// ACPI is hardware-reduced: the kernel then has no PIT, HPET or ACPI timer
// to measure the TSC against, and under TCG nothing tells it the TSC's
// rate, so its boot hangs or, on an idle host, guesses; TCG's TSC is the
// host's, whose rate the host knows, or under -icount (extra, QEMU's
// further arguments) the virtual clock's, 1 GHz.
//
// On pc the kernel routes the PCI devices' interrupts by the BIOS's
// tables, not ACPI (acpi=noirq): ACPI's routing of each virtio device's
// legacy interrupt took about 165 ms of its probe under TCG. Without ACPI's
// interrupt routing the kernel gives PCI devices no MSI domain, so each
// virtio driver's MSI-X setup failed with a kernel WARNING (a stack trace,
// and the kernel tainted) before falling back to that legacy interrupt:
// pci=nomsi takes the legacy interrupt at once.
const pcKernelArgs = "acpi=noirq pci=nomsi "

func (m Machine) kernelArgs(accel string, extra []string) string {
	if m.orPC() == PC {
		return pcKernelArgs
	}
	if m != MicroVM {
		return ""
	}
	args := "reboot=t "
	khz := HostTSCkHz()
	if slices.Contains(extra, "-icount") {
		khz = 1000000
	}
	if khz > 0 && accel == "tcg" {
		args += "tsc_early_khz=" + strconv.Itoa(khz) + " "
	}
	return args
}

// HostTSCkHz is the host's TSC rate in kHz, or 0 where it is not known.
var HostTSCkHz = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return TSCkHz(string(b))
})

// TSCkHz reads the TSC rate out of /proc/cpuinfo. The kernel derives the
// delay loop from the TSC wherever it knows the TSC's rate (x86's
// "Calibrating delay loop (skipped)", arm64's timer), and the BogoMIPS
// it shows are that rate in kHz over 500, to 5 kHz; "cpu MHz" is the
// core's clock of the moment on hosts that scale it, not the TSC's.
func TSCkHz(cpuinfo string) int {
	for _, line := range strings.Split(cpuinfo, "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(key), "bogomips") {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || f <= 0 {
			return 0
		}
		return int(f*500 + 0.5)
	}
	return 0
}
