package qemu

import (
	"strings"
	"testing"
)

func TestTSCkHz(t *testing.T) {
	for _, tt := range []struct {
		name, cpuinfo string
		want          int
	}{
		{"x86", "processor\t: 0\ncpu MHz\t\t: 1200.000\nbogomips\t: 5389.78\nflags\t: tsc\n", 2694890},
		{"arm64", "processor\t: 0\nBogoMIPS\t: 48.00\n", 24000},
		{"none", "processor\t: 0\n", 0},
		{"garbage", "bogomips\t: fast\n", 0},
	} {
		if got := TSCkHz(tt.cpuinfo); got != tt.want {
			t.Errorf("TSCkHz(%s) = %d; want %d", tt.name, got, tt.want)
		}
	}
}

func TestParseMachine(t *testing.T) {
	for _, m := range Machines {
		if got, err := ParseMachine(string(m)); got != m || err != nil {
			t.Errorf("ParseMachine(%q) = %q, %v; want it back", m, got, err)
		}
	}
	if _, err := ParseMachine("virt"); err == nil || !strings.Contains(err.Error(), `"virt"`) {
		t.Errorf("ParseMachine(virt) = %v; want an error naming it", err)
	}
}

// Each machine gets its own -M and device models; only microvm gets
// reboot=t, and only under TCG the TSC's rate, on the kernel command line;
// only pc acpi=noirq.
func TestArgsMachine(t *testing.T) {
	vm := VM{Kernel: "vmlinuz", Initrd: "initrd", Disk: "disk.img", NetOptions: "hostfwd=tcp::8080-:80", ControlSocket: "ctl.sock"}
	for _, tt := range []struct {
		machine     Machine
		accel, bus  string
		want, avoid []string
	}{
		{"", "tcg", "", []string{"-M pc ", "virtio-blk-pci,drive=root", "-netdev user,id=net0,hostfwd=tcp::8080-:80 -device virtio-net-pci,netdev=net0", "virtio-serial-pci,id=ctlbus", "panic=-1 acpi=noirq pci=nomsi "}, []string{"tsc_early_khz", "reboot=t"}},
		{Q35, "tcg", "", []string{"-M q35 ", "virtio-blk-pci"}, []string{"acpi=noirq", "pci=nomsi"}},
		{MicroVM, "tcg", "", []string{"-M microvm,acpi=on -global virtio-mmio.force-legacy=false ", "virtio-blk-device,drive=root", "-device virtio-net-device,netdev=net0", "virtio-serial-device,id=ctlbus", "isa-debug-exit", "panic=-1 reboot=t "}, []string{"-pci", "acpi=noirq", "pci=nomsi"}},
		{MicroVM, "kvm", "", []string{"reboot=t"}, []string{"tsc_early_khz"}},
		{MicroVM, "tcg", "nvme", []string{"-M microvm,acpi=on,pcie=on ", "nvme,drive=root"}, nil},
	} {
		vm := vm
		vm.Machine, vm.Accel, vm.DiskBus = tt.machine, tt.accel, tt.bus
		args := strings.Join(vm.Args(), " ")
		for _, want := range tt.want {
			if !strings.Contains(args, want) {
				t.Errorf("%s/%s/%s: argv %q lacks %q", tt.machine, tt.accel, tt.bus, args, want)
			}
		}
		for _, bad := range tt.avoid {
			if strings.Contains(args, bad) {
				t.Errorf("%s/%s/%s: argv %q has %q", tt.machine, tt.accel, tt.bus, args, bad)
			}
		}
	}
	if HostTSCkHz() > 0 {
		vm.Machine = MicroVM
		if args := strings.Join(vm.Args(), " "); !strings.Contains(args, "console=ttyS0 panic=-1 reboot=t tsc_early_khz=") {
			t.Errorf("microvm under TCG: argv %q; want the host's TSC rate on the kernel command line", args)
		}
	}
	vm.Machine, vm.Extra = MicroVM, []string{"-icount", "shift=0,sleep=off"}
	if args := strings.Join(vm.Args(), " "); !strings.Contains(args, "reboot=t tsc_early_khz=1000000 ") {
		t.Errorf("microvm under -icount: argv %q; want the virtual clock's 1 GHz on the kernel command line", args)
	}
}

func TestParseMachineHelp(t *testing.T) {
	help := "Supported machines are:\nmicrovm              microvm (i386)\npc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\nq35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\n"
	if got := strings.Join(ParseMachineHelp(help), " "); got != "microvm pc q35" {
		t.Errorf("ParseMachineHelp = %q; want microvm pc q35", got)
	}
}
