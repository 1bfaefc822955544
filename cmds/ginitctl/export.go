package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"path/filepath"
	"strconv"
	"strings"

	"github.com/ginit-dev/ginit/internal/export"
)

const exportHead = `Usage: ginitctl export --kubevirt|--nomad|--tinkerbell [flags] IMAGE

Writes ginit's artifacts in the form a VM engine consumes, with ginit's
exit status in its terms (see the README's "Running at scale").

  --kubevirt    a containerDisk image of IMAGE's disk (one raw disk at
                /disk/disk.img, 107:107, 0440, linux/amd64) named --disk-ref,
                a kernel-boot image (/boot/vmlinuz, /boot/initramfs) named
                --boot-ref, both to --to, and OUT/vm.yaml, a VirtualMachine
                that boots them (panicDevices isa: a failed workload reads
                as Failed). --diskless: no disk; the VM pulls IMAGE, a
                registry reference, at boot (root=docker://), with
                --initrd build/linuxboot.cpio.
  --nomad       OUT/job.nomad.hcl for Nomad's qemu task driver, and the
                artifacts it fetches from --url: OUT/vmlinuz,
                OUT/initramfs, OUT/disk.img. The task's exit code is 2N+1
                for a workload status N (1: success).
  --tinkerbell  OUT/hardware.yaml, a Tinkerbell Hardware whose
                netboot.ipxe.contents is OUT/boot.ipxe, and the kernel and
                linuxboot initramfs to serve at --url; the machine pulls
                IMAGE, a registry reference, at boot, and installs it with
                --install.

IMAGE is anything oci2disk takes (docker://REF, oci:PATH, dir:PATH, ...)
where a disk is made, and a registry reference where it is pulled at boot.

Examples:
  ginitctl export --kubevirt --disk-ref reg.example/app:disk --boot-ref reg.example/app:boot --to docker:// docker://reg.example/app:1
  ginitctl export --kubevirt --diskless --boot-ref reg.example/ginit:linuxboot --to oci:./images reg.example/app:1
  ginitctl export --nomad --url https://files.example/app --port http=8080 -o job/ docker://reg.example/app:1
  ginitctl export --tinkerbell --url http://10.0.0.5/ginit --mac 52:54:00:12:34:56 --install /dev/sda reg.example/installer:1

Flags:
`

// portList is --port LABEL=PORT, repeatable.
type portList map[string]int

func (p portList) String() string { return "" }
func (p portList) Set(v string) error {
	label, port, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(port)
	if !ok || err != nil {
		return fmt.Errorf("want LABEL=PORT, such as http=8080")
	}
	p[label] = n
	return nil
}

func exportCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ginitctl export", flag.ContinueOnError)
	var kubevirt, nomad, tinkerbell, diskless bool
	var in export.Inputs
	var kv export.KubeVirt
	var nj export.Nomad
	var tb export.Tinkerbell
	var name, url, appendArgs, to string
	var mem int
	ports := portList{}
	fs.BoolVar(&kubevirt, "kubevirt", false, "export for KubeVirt")
	fs.BoolVar(&nomad, "nomad", false, "export for Nomad's qemu task driver")
	fs.BoolVar(&tinkerbell, "tinkerbell", false, "export for Tinkerbell")
	fs.StringVar(&in.Out, "o", ".", "directory the files are written to")
	fs.StringVar(&in.Kernel, "kernel", "build/kernel/vmlinuz", "kernel to boot")
	fs.StringVar(&in.Initrd, "initrd", "", "ginit's initramfs (default build/minimal.cpio; build/linuxboot.cpio for --diskless and --tinkerbell)")
	fs.StringVar(&name, "name", "ginit", "the VirtualMachine's, job's or Hardware's name (a DNS label)")
	fs.StringVar(&appendArgs, "append", "", "more kernel parameters for ginit")
	fs.IntVar(&mem, "memory", 256, "the VM's memory, MiB (kubevirt, nomad)")
	fs.StringVar(&kv.DiskRef, "disk-ref", "", "kubevirt: the containerDisk image's reference")
	fs.StringVar(&kv.BootRef, "boot-ref", "", "kubevirt: the kernel-boot image's reference")
	fs.StringVar(&to, "to", "", "kubevirt: where the images go: docker:// (push to their references), oci:DIR, docker-archive:FILE (default docker-archive:OUT/images.tar)")
	fs.BoolVar(&diskless, "diskless", false, "kubevirt: no containerDisk; the VM pulls IMAGE at boot")
	fs.StringVar(&kv.RunStrategy, "run-strategy", "Once", "kubevirt: spec.runStrategy (Once: the VM ends with its workload; Always, RerunOnFailure, Manual, Halted)")
	fs.StringVar(&url, "url", "", "nomad, tinkerbell: the URL the kernel, initramfs (and, nomad, disk) are served from")
	fs.Var(ports, "port", "nomad: LABEL=PORT, a port the workload listens on, mapped by Nomad (repeatable)")
	fs.StringVar(&nj.Type, "type", "batch", "nomad: the job's type, batch or service")
	fs.StringVar(&nj.Accelerator, "accelerator", "kvm", "nomad: QEMU's accelerator, kvm or tcg")
	fs.StringVar(&tb.MAC, "mac", "", "tinkerbell: the MAC address of the interface that netboots")
	fs.StringVar(&tb.Hostname, "hostname", "", "tinkerbell: the machine's hostname")
	fs.StringVar(&tb.IP, "ip", "", "tinkerbell: the address Smee leases, as ADDRESS/PREFIX (none: proxy DHCP)")
	fs.StringVar(&tb.Gateway, "gateway", "", "tinkerbell: the gateway Smee hands out")
	fs.StringVar(&tb.Namespace, "namespace", "tink-system", "tinkerbell: the Hardware's namespace")
	fs.BoolVar(&tb.UEFI, "uefi", false, "tinkerbell: the machine netboots with UEFI")
	fs.StringVar(&tb.Install, "install", "", "tinkerbell: install the image onto this disk (ginit.install=), then boot it from there")
	if status, done := parse(fs, args, stdout, stderr, exportHead, ""); done {
		return status
	}
	engines := 0
	for _, on := range []bool{kubevirt, nomad, tinkerbell} {
		if on {
			engines++
		}
	}
	if engines != 1 || fs.NArg() != 1 {
		return fail(stderr, errWant("export", "one of --kubevirt, --nomad, --tinkerbell, and one IMAGE"))
	}
	in.Image = fs.Arg(0)
	if in.Initrd == "" {
		in.Initrd = "build/minimal.cpio"
		if diskless || tinkerbell {
			in.Initrd = "build/linuxboot.cpio"
		}
	}
	ctx := context.Background()
	var files []string
	var err error
	switch {
	case kubevirt:
		kv.Name, kv.Append, kv.MemoryMiB = name, appendArgs, mem
		if diskless {
			kv.DiskRef = ""
		} else if kv.DiskRef == "" {
			return fail(stderr, errWant("export", "--disk-ref REF, the containerDisk's reference (or --diskless)"))
		}
		if to == "" {
			to = export.ToDockerArchive + filepath.Join(in.Out, "images.tar")
		}
		files, err = kv.Export(ctx, in, to)
		if err == nil && to != export.ToRegistry && strings.HasPrefix(to, export.ToDockerArchive) {
			files = append(files, strings.TrimPrefix(to, export.ToDockerArchive))
		}
	case nomad:
		nj.Name, nj.BaseURL, nj.Append, nj.MemoryMiB, nj.Ports = name, url, appendArgs, mem, ports
		files, err = nj.Export(ctx, in)
	case tinkerbell:
		tb.Name, tb.BaseURL, tb.Append = name, url, appendArgs
		files, err = tb.Export(in)
	}
	if err != nil {
		return fail(stderr, err)
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	return 0
}
