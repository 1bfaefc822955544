package vmrun

import (
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/qemu"
)

func TestMemoryMB(t *testing.T) {
	for in, want := range map[string]int{"512m": 512, "1g": 1024, "1.5g": 1536, "64M": 64, "128MiB": 128, "100000000": 96, "67108865": 65} {
		if got, err := MemoryMB(in); err != nil || got != want {
			t.Errorf("MemoryMB(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"32m": "--memory 32m: below the 64m", "lots": `--memory: size "lots"`, "": "--memory: size"} {
		if _, err := MemoryMB(in); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("MemoryMB(%q) = %v; want %q", in, err, want)
		}
	}
}

func TestCPUs(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "0.5": 1, "1.5": 2, "4": 4} {
		if got, err := cpus(in, 4); err != nil || got != want {
			t.Errorf("cpus(%q, 4 on the host) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"0": "want a number above 0", "-1": "want a number", "two": "want a number", "NaN": "want a number", "5": "this host has 4 CPUs"} {
		if _, err := cpus(in, 4); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("cpus(%q, 4 on the host) = %v; want %q", in, err, want)
		}
	}
}

func TestMachineApply(t *testing.T) {
	var vm qemu.VM
	Machine{}.apply(&vm, settled{accel: AccelTCG})
	if vm.MemMB != DefaultMemoryMB || vm.CPUs != 0 || vm.Accel != "tcg" || vm.NetOptions != "" {
		t.Errorf("apply(no flags) = %+v; want the default memory, one CPU, no forwards", vm)
	}
	vm = qemu.VM{NetOptions: "tftp=/srv"}
	ports := []Port{{HostIP: "127.0.0.1", HostPort: 18080, GuestPort: 8080, Proto: "tcp"}}
	Machine{MemoryMB: 1024, CPUs: 2}.apply(&vm, settled{accel: AccelKVM, ports: ports})
	args := strings.Join(vm.Args(), " ")
	for _, want := range []string{"-accel kvm", "-m 1024", "-smp 2", "-netdev user,id=net0,tftp=/srv,hostfwd=tcp:127.0.0.1:18080-:8080"} {
		if !strings.Contains(args, want) {
			t.Errorf("QEMU argv %q; want %q", args, want)
		}
	}
	if got := (settled{ports: ports}).portList(); len(got) != 1 || got[0] != "8080/tcp -> 127.0.0.1:18080" {
		t.Errorf("portList = %q; want docker port's line", got)
	}
}
