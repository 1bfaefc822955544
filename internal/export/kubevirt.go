package export

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// KubeVirt is a VirtualMachine that boots ginit's kernel-boot image with
// the containerDisk as its root disk, or, diskless, with root=docker://.
type KubeVirt struct {
	Name    string // the VirtualMachine's name
	BootRef string // the kernel-boot image
	DiskRef string // the containerDisk image; empty for a diskless machine
	// Root is a diskless machine's image (root=docker://Root, pulled at
	// boot: the kernel-boot image must hold the linuxboot initramfs).
	Root        string
	Append      string // more kernel parameters
	MemoryMiB   int    // 256 when 0
	RunStrategy string // Once when empty: the VM ends with its workload
	// GraceSeconds is terminationGracePeriodSeconds: how long KubeVirt
	// waits after the ACPI power button (ginit's StopSignal path) before
	// it kills the VM; 30 when 0, above ginit's default stop timeout.
	GraceSeconds int
}

// The VirtualMachine's fields, named exactly as kubevirt.io/v1 names them
// (staging/src/kubevirt.io/api/core/v1 in KubeVirt's repository).
type (
	kvVM struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Metadata   kvMeta   `yaml:"metadata"`
		Spec       kvVMSpec `yaml:"spec"`
	}
	kvMeta struct {
		Name   string            `yaml:"name,omitempty"`
		Labels map[string]string `yaml:"labels,omitempty"`
	}
	kvVMSpec struct {
		RunStrategy string     `yaml:"runStrategy"`
		Template    kvTemplate `yaml:"template"`
	}
	kvTemplate struct {
		Metadata kvMeta    `yaml:"metadata"`
		Spec     kvVMISpec `yaml:"spec"`
	}
	kvVMISpec struct {
		Domain                        kvDomain   `yaml:"domain"`
		TerminationGracePeriodSeconds int        `yaml:"terminationGracePeriodSeconds"`
		Volumes                       []kvVolume `yaml:"volumes,omitempty"`
	}
	kvDomain struct {
		Firmware  kvFirmware  `yaml:"firmware"`
		Devices   kvDevices   `yaml:"devices"`
		Resources kvResources `yaml:"resources"`
	}
	kvFirmware struct {
		KernelBoot kvKernelBoot `yaml:"kernelBoot"`
	}
	kvKernelBoot struct {
		KernelArgs string      `yaml:"kernelArgs"`
		Container  kvContainer `yaml:"container"`
	}
	kvContainer struct {
		Image      string `yaml:"image"`
		KernelPath string `yaml:"kernelPath"`
		InitrdPath string `yaml:"initrdPath"`
	}
	kvDevices struct {
		Disks        []kvDisk  `yaml:"disks,omitempty"`
		PanicDevices []kvPanic `yaml:"panicDevices"`
	}
	kvDisk struct {
		Name string       `yaml:"name"`
		Disk kvDiskTarget `yaml:"disk"`
	}
	kvDiskTarget struct {
		Bus string `yaml:"bus"`
	}
	kvPanic struct {
		Model string `yaml:"model"`
	}
	kvResources struct {
		Requests map[string]string `yaml:"requests"`
	}
	kvVolume struct {
		Name          string          `yaml:"name"`
		ContainerDisk kvContainerDisk `yaml:"containerDisk"`
	}
	kvContainerDisk struct {
		Image string `yaml:"image"`
	}
)

// rootVolume is the containerDisk's volume and disk name.
const rootVolume = "root"

// KernelArgs is the command line the VirtualMachine gives ginit: the
// serial console virtconsole and `virtctl console` read, a failed boot
// that powers off (and so reads as Failed) instead of waiting at a shell,
// root= for a diskless machine, then Append.
func (k KubeVirt) KernelArgs() string {
	args := []string{"console=ttyS0", "ginit.onerror=poweroff"}
	if k.DiskRef == "" && k.Root != "" {
		args = append(args, "root=docker://"+k.Root)
	}
	if k.Append != "" {
		args = append(args, k.Append)
	}
	return strings.Join(args, " ")
}

// VirtualMachine returns the VirtualMachine as YAML.
func (k KubeVirt) VirtualMachine() ([]byte, error) {
	if err := checkName(k.Name); err != nil {
		return nil, err
	}
	if k.BootRef == "" {
		return nil, fmt.Errorf("export: the VirtualMachine needs a kernel-boot image reference")
	}
	if k.DiskRef == "" && k.Root == "" {
		return nil, fmt.Errorf("export: the VirtualMachine needs a containerDisk or, diskless, an image to pull at boot")
	}
	mem, grace, strategy := k.MemoryMiB, k.GraceSeconds, k.RunStrategy
	if mem == 0 {
		mem = 256
	}
	if grace == 0 {
		grace = 30
	}
	if strategy == "" {
		strategy = "Once"
	}
	switch strategy {
	case "Always", "RerunOnFailure", "Once", "Manual", "Halted":
	default:
		return nil, fmt.Errorf("export: runStrategy %q: want Always, RerunOnFailure, Once, Manual or Halted", strategy)
	}
	vm := kvVM{
		APIVersion: "kubevirt.io/v1",
		Kind:       "VirtualMachine",
		Metadata:   kvMeta{Name: k.Name},
		Spec: kvVMSpec{
			RunStrategy: strategy,
			Template: kvTemplate{
				Metadata: kvMeta{Labels: map[string]string{"kubevirt.io/vm": k.Name}},
				Spec: kvVMISpec{
					Domain: kvDomain{
						Firmware: kvFirmware{KernelBoot: kvKernelBoot{
							KernelArgs: k.KernelArgs(),
							Container:  kvContainer{Image: k.BootRef, KernelPath: KernelPath, InitrdPath: InitrdPath},
						}},
						// pvpanic on the ISA bus (port 0x505): how ginit
						// says the workload failed.
						Devices:   kvDevices{PanicDevices: []kvPanic{{Model: "isa"}}},
						Resources: kvResources{Requests: map[string]string{"memory": strconv.Itoa(mem) + "Mi"}},
					},
					TerminationGracePeriodSeconds: grace,
				},
			},
		},
	}
	if k.DiskRef != "" {
		spec := &vm.Spec.Template.Spec
		spec.Domain.Devices.Disks = []kvDisk{{Name: rootVolume, Disk: kvDiskTarget{Bus: "virtio"}}}
		spec.Volumes = []kvVolume{{Name: rootVolume, ContainerDisk: kvContainerDisk{Image: k.DiskRef}}}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(vm); err != nil {
		return nil, fmt.Errorf("export: VirtualMachine: %w", err)
	}
	return buf.Bytes(), enc.Close()
}

// checkName checks a name as Kubernetes and Nomad take it: a DNS label.
func checkName(n string) error {
	ok := n != "" && len(n) <= 63 && n[0] != '-' && n[len(n)-1] != '-'
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("export: name %q: want lowercase letters, digits and '-' (a DNS label)", n)
	}
	return nil
}
