package integration

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/export"
	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/rundoc"
)

// extract copies the file at path in img to dir/base.
func extract(t *testing.T, img v1.Image, path, dir, base string) string {
	t.Helper()
	out := filepath.Join(dir, base)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := export.ExtractFile(img, path, f); err != nil {
		t.Fatal(err)
	}
	return out
}

// kernelBootFiles pushes the kernel-boot image of a to an in-process
// registry, pulls it back as KubeVirt would and returns its kernel and
// initramfs, at the VirtualMachine's kernelPath and initrdPath.
func kernelBootFiles(t *testing.T, a Artifacts, dir string) (kernel, initrd string) {
	t.Helper()
	img, err := export.KernelBoot(a.Kernel, a.Initrd, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	host := disktest.Registry(t, nil)
	ref := host + "/ginit:boot"
	if err := export.WriteImages(context.Background(), export.ToRegistry, map[string]v1.Image{ref: img}); err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref)
	pulled, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return extract(t, pulled, export.KernelPath, dir, "vmlinuz"), extract(t, pulled, export.InitrdPath, dir, "initramfs")
}

// virtLauncherArgs is QEMU in the shape KubeVirt's virt-launcher gives a
// kernel-boot VM with a panic device: q35, the kernel and initramfs of the
// kernel-boot image, the containerDisk on virtio, the ISA pvpanic device,
// and a guest panic that ends QEMU with a failure (libvirt reports it as
// crashed, and KubeVirt the VMI as Failed).
func virtLauncherArgs(kernel, initrd, disk, kernelArgs string) []string {
	args := []string{"qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "256", "-smp", "1",
		"-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", kernelArgs,
		"-device", "pvpanic", "-action", "panic=exit-failure", "-nic", "user,model=virtio-net-pci"}
	if disk != "" {
		args = append(args, "-drive", "file="+disk+",if=none,id=root,format=raw", "-device", "virtio-blk-pci,drive=root")
	}
	return args
}

// The containerDisk and kernel-boot images, read back, boot as
// virt-launcher boots them: a workload that exits 0 powers off (KubeVirt:
// Succeeded); one that exits 3 ends in a guest panic once its disk is clean
// (KubeVirt: Failed).
func TestKubeVirtContainerDisk(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	for _, status := range []int{0, 3} {
		t.Run("status "+strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			kernel, initrd := kernelBootFiles(t, a, dir)
			cd, err := export.ContainerDisk(a.MakeDisk(t, probeRoot(t, a, nil)), time.Unix(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			archive := filepath.Join(dir, "images.tar")
			if err := export.WriteImages(context.Background(), "docker-archive:"+archive, map[string]v1.Image{"registry.example/probe:disk": cd}); err != nil {
				t.Fatal(err)
			}
			tag, _ := name.NewTag("registry.example/probe:disk")
			loaded, err := tarball.ImageFromPath(archive, &tag)
			if err != nil {
				t.Fatal(err)
			}
			disk := extract(t, loaded, "/disk/"+export.DiskFile, dir, "disk.img")
			vm := export.KubeVirt{Name: "probe", BootRef: "registry.example/probe:boot", DiskRef: "registry.example/probe:disk",
				Append: `entrypoint="/app/probe write /status.txt written ` + strconv.Itoa(status) + `"`}
			res, err := qemu.RunCommand(context.Background(), dir, virtLauncherArgs(kernel, initrd, disk, vm.KernelArgs()), "", nil, 3*time.Minute)
			if err != nil {
				t.Fatalf("%v; console:\n%s", err, res.Console)
			}
			wantConsole(t, res, "ginit: entrypoint exited with status "+strconv.Itoa(status))
			noPanic(t, res)
			wantExit, reported := 0, false
			if status != 0 {
				wantExit, reported = 1, true // -action panic=exit-failure
			}
			if res.QEMUExit != wantExit {
				t.Errorf("QEMU exit = %d; want %d; console:\n%s", res.QEMUExit, wantExit, res.Console)
			}
			if got := strings.Contains(res.Console, "through pvpanic"); got != reported {
				t.Errorf("console reports pvpanic: %v; want %v", got, reported)
			}
			Fsck(t, disk)
			if got := DebugfsCat(t, disk, "/status.txt"); got != "written\n" {
				t.Errorf("/status.txt = %q; want the workload's line", got)
			}
		})
	}
}

// The diskless variant: the kernel-boot image alone, holding the linuxboot
// initramfs, pulls root=docker://REF from a registry on the host's
// loopback at boot.
func TestKubeVirtDiskless(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	dir := t.TempDir()
	kernel, initrd := kernelBootFiles(t, a, dir)
	img := probeImage(t, a, v1.Config{Entrypoint: []string{"/app/probe", "args", "diskless on KubeVirt"}})
	ref := serveRegistry(t, "fleet/probe:1", img)
	vm := export.KubeVirt{Name: "probe", BootRef: "registry.example/ginit:linuxboot", Root: ref, Append: "ginit.rootsize=256m"}
	args := virtLauncherArgs(kernel, initrd, "", vm.KernelArgs())
	for i, arg := range args {
		if arg == "-m" {
			args[i+1] = "512"
		}
	}
	res, err := qemu.RunCommand(context.Background(), dir, args, "", nil, 3*time.Minute)
	if err != nil {
		t.Fatalf("%v; console:\n%s", err, res.Console)
	}
	wantClean(t, res, "pulling docker://"+ref, `"diskless on KubeVirt"`, "ginit: entrypoint exited with status 0")
	if res.QEMUExit != 0 {
		t.Errorf("QEMU exit = %d; want 0 (a poweroff)", res.QEMUExit)
	}
}

// freePort is a TCP port on the host's loopback nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// taskDir is a Nomad task directory as the job's artifacts leave it:
// local/ holding the kernel, the initramfs and the disk.
func taskDir(t *testing.T, a Artifacts, disk string) string {
	t.Helper()
	dir := t.TempDir()
	local := filepath.Join(dir, "local")
	if err := os.Mkdir(local, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{a.Kernel: export.NomadKernel, a.Initrd: export.NomadInitrd, disk: export.NomadDisk} {
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(local, dst))
		if err == nil {
			_, err = io.Copy(out, in)
			out.Close()
		}
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The Nomad job's exact QEMU command line, run from a task directory: a
// stop (Nomad's graceful_shutdown writes system_powerdown to the monitor)
// reaches the workload as the image's StopSignal, and the workload's status
// N comes back as the task's exit code 2N+1.
func TestNomadQemuDriver(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	t.Run("stop", func(t *testing.T) {
		t.Parallel()
		cfg := map[string]any{"Entrypoint": []string{"/app/probe", "stopwait", "/stopped.txt"}, "StopSignal": "SIGUSR1"}
		dir := taskDir(t, a, a.MakeDisk(t, probeRoot(t, a, cfg)))
		job := export.Nomad{Name: "probe", BaseURL: "http://artifacts.invalid", Accelerator: "tcg", Ports: map[string]int{"http": 8080},
			Append: "ginit.debug"}
		argv := job.DriverArgs(dir, map[string]int{"http": freePort(t)})
		res, err := qemu.RunCommand(context.Background(), dir, argv, filepath.Join(dir, "qm.sock"), []qemu.Trigger{
			{When: "probe: waiting for a stop signal"},
			{When: "ginit: watching the power button", Command: "system_powerdown"}}, 3*time.Minute)
		if err != nil {
			t.Fatalf("%v; console:\n%s", err, res.Console)
		}
		wantConsole(t, res, "ginit: power button pressed", "ginit: entrypoint exited with status 0")
		noPanic(t, res)
		if res.QEMUExit != 1 {
			t.Errorf("task exit code = %d; want 1 (status 0)", res.QEMUExit)
		}
		disk := filepath.Join(dir, "local", export.NomadDisk)
		Fsck(t, disk)
		if got := DebugfsCat(t, disk, "/stopped.txt"); got != "stopped by SIGUSR1\n" {
			t.Errorf("/stopped.txt = %q; want the image's StopSignal, SIGUSR1", got)
		}
	})
	t.Run("status", func(t *testing.T) {
		t.Parallel()
		dir := taskDir(t, a, a.MakeDisk(t, probeRoot(t, a, nil)))
		job := export.Nomad{Name: "probe", BaseURL: "http://artifacts.invalid", Accelerator: "tcg",
			Append: `entrypoint="/app/probe write /status.txt written 3"`}
		res, err := qemu.RunCommand(context.Background(), dir, job.DriverArgs(dir, nil), filepath.Join(dir, "qm.sock"), nil, 3*time.Minute)
		if err != nil {
			t.Fatalf("%v; console:\n%s", err, res.Console)
		}
		wantConsole(t, res, "ginit: entrypoint exited with status 3")
		if res.QEMUExit != 7 {
			t.Errorf("task exit code = %d; want 7 (status 3)", res.QEMUExit)
		}
	})
}

// A fleet's console is not a person's: on the linuxboot image (its
// /etc/ginit/cmdline says ginit.onerror=reboot), and where the host's run
// document says "onerror": "reboot", a failed boot shows its error and the
// coming reboot, waits ginit.rebootdelay, and reboots: no shell on the
// console. (QEMU's -no-reboot turns the reboot into its exit, status 0.)
func TestFleetConsoleRebootsAfterDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		find func(*testing.T) Artifacts
		doc  string
	}{
		{"linuxboot image", FindLinuxboot, ""},
		{"run document", FindArtifacts, `{"version":1,"onerror":"reboot"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.find(t)
			vm := VM{NoNet: true, Append: "root=/dev/vdz ginit.rootwait=1s ginit.rebootdelay=2s", Timeout: 2 * time.Minute}
			if tc.doc != "" {
				vm.FwCfg = map[string]string{rundoc.FwCfgName: writeRunDoc(t, tc.doc)}
			}
			res := a.Boot(t, vm)
			wantConsole(t, res, "ginit: boot failed: ", "ginit: rebooting in 2s (ginit.rebootdelay)", "ginit: reboot")
			noPanic(t, res)
			if strings.Contains(res.Console, "starting a rescue shell") {
				t.Errorf("a rescue shell started; console:\n%s", res.Console)
			}
			if res.QEMUExit != 0 {
				t.Errorf("QEMU exit = %d; want 0 (the reboot, under -no-reboot)", res.QEMUExit)
			}
		})
	}
}
