package vmrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"

	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/units"
)

// Machine sizes: the default guest memory, and the least that the kernel
// and ginit's initramfs boot in.
const (
	DefaultMemoryMB = 512
	minMemoryMB     = 64
)

// MemoryMB reads --memory in docker's units (512m, 1g; a bare number is
// bytes) as QEMU's -m, whole MiB rounded up.
func MemoryMB(s string) (int, error) {
	n, err := units.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("--memory: %w", err)
	}
	mb := (n + 1<<20 - 1) >> 20
	if mb < minMemoryMB {
		return 0, fmt.Errorf("--memory %s: below the %dm a VM needs to boot", s, minMemoryMB)
	}
	if mb > math.MaxInt32 {
		return 0, fmt.Errorf("--memory %s: too large", s)
	}
	return int(mb), nil
}

// CPUs reads --cpus, docker's decimal number of CPUs, as virtual CPUs:
// rounded up, since a VM's CPUs are whole; at most the host's, as docker
// allows.
func CPUs(s string) (int, error) {
	return cpus(s, runtime.NumCPU())
}

func cpus(s string, host int) (int, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f <= 0 {
		return 0, fmt.Errorf("--cpus %q: want a number above 0, such as 1 or 1.5", s)
	}
	if f > float64(host) {
		return 0, fmt.Errorf("--cpus %s: this host has %d CPUs", s, host)
	}
	return int(math.Ceil(f)), nil
}

// Machine is what run's flags set of the machine and its ties to the
// host: its size, its accelerator, its published ports.
type Machine struct {
	// Type is QEMU's machine type (--machine); "" chooses one for the
	// run (State.ChooseMachine).
	Type       qemu.Machine
	MemoryMB   int    // -m; 0 is DefaultMemoryMB
	CPUs       int    // --cpus; 0 is one
	Accel      string // --accel: kvm, tcg or auto ("" is auto)
	Publish    []Port // -p, as ParsePublish read them
	PublishAll bool   // -P: each of the image's ExposedPorts on a free port
}

// settled is a Machine made definite for one boot.
type settled struct {
	machine qemu.Machine
	accel   string
	ports   []Port // every host port known
}

// settle chooses the accelerator and the machine type for initrd, and
// checks that -p's host ports are free, before anything of the VM is made.
// log gets why auto did not choose KVM, the first time.
func (m Machine) settle(ctx context.Context, state State, initrd string, log io.Writer) (settled, error) {
	if m.Accel == "" {
		m.Accel = AccelAuto
	}
	accel, note, err := state.ChooseAccel(ctx, m.Accel)
	if err != nil {
		return settled{}, err
	}
	if note != "" && log != nil {
		fmt.Fprintf(log, "ginitctl: %s\n", note)
	}
	if _, err := ReservePorts(m.Publish); err != nil {
		return settled{}, err
	}
	machine, err := state.ChooseMachine(ctx, m.Type, accel, initrd)
	if err != nil {
		return settled{}, err
	}
	return settled{machine: machine, accel: accel}, nil
}

// reservePorts gives every port its host port, -P's from the image's
// ExposedPorts in the base disk, and prints them for -P as docker port
// does. It runs just before QEMU starts, so that a port taken meanwhile
// fails here, named, and not in QEMU.
func (m Machine) reservePorts(ctx context.Context, s *settled, baseDisk string, log io.Writer) error {
	ports := m.Publish
	if m.PublishAll {
		exposed, err := exposedPorts(ctx, baseDisk)
		if err != nil {
			return err
		}
		ports = append(append([]Port{}, ports...), exposed...)
	}
	reserved, err := ReservePorts(ports)
	if err != nil {
		return err
	}
	s.ports = reserved
	if m.PublishAll && log != nil {
		for _, p := range reserved {
			fmt.Fprintln(log, p)
		}
	}
	return nil
}

// exposedPorts are -P's ports for the image on disk.
func exposedPorts(ctx context.Context, disk string) ([]Port, error) {
	b, err := ext4img.ReadFile(ctx, disk, imagespec.ConfigPath)
	if err != nil && strings.Contains(err.Error(), "File not found by ext2_lookup") {
		return nil, nil // a root without an image configuration exposes nothing
	}
	if err != nil {
		return nil, fmt.Errorf("-P: the image's configuration: %w", err)
	}
	var img imagespec.Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, fmt.Errorf("-P: the image's configuration %s: %w", imagespec.ConfigPath, err)
	}
	return ExposedPorts(img.Config.ExposedPorts)
}

// apply sets vm's machine type, size, accelerator and port forwards.
func (m Machine) apply(vm *qemu.VM, s settled) {
	vm.Machine, vm.MemMB, vm.CPUs, vm.Accel = s.machine, m.MemoryMB, m.CPUs, s.accel
	if vm.MemMB == 0 {
		vm.MemMB = DefaultMemoryMB
	}
	if len(s.ports) > 0 {
		vm.NetOptions = strings.TrimPrefix(vm.NetOptions+","+netOptions(s.ports), ",")
	}
}

// portList is the ports as vm.json and ps show them.
func (s settled) portList() []string {
	list := make([]string, len(s.ports))
	for i, p := range s.ports {
		list[i] = p.String()
	}
	return list
}
