// Package integration boots the real image in QEMU and checks what a user
// would see: the console, QEMU's exit status, and the disk afterwards.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// Artifacts are the kernel and image the VM tests boot.
type Artifacts struct {
	Kernel string
	Initrd string
	Repo   string
}

// FindArtifacts locates the build outputs. Without them the VM tests cannot
// run: they fail when GINIT_VM_TESTS=1 (make test sets it) and skip, saying
// why, otherwise.
func FindArtifacts(t *testing.T) Artifacts {
	t.Helper()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	a := Artifacts{
		Kernel: envOr("GINIT_KERNEL", filepath.Join(repo, "build/kernel/vmlinuz")),
		Initrd: envOr("GINIT_INITRD", filepath.Join(repo, "build/minimal.cpio")),
		Repo:   repo,
	}
	var missing []string
	for _, p := range []string{a.Kernel, a.Initrd} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		missing = append(missing, "qemu-system-x86_64")
	}
	if len(missing) > 0 {
		testenv.Missing(t, "VM test needs %v: run `make test` (it fetches the kernel and builds the image)", missing)
	}
	return a
}

// FindLinuxboot is FindArtifacts with the linuxboot image, which carries
// what diskless roots, installs and kexec need (ocipull, osboot).
func FindLinuxboot(t *testing.T) Artifacts {
	t.Helper()
	a := FindArtifacts(t)
	a.Initrd = envOr("GINIT_LINUXBOOT_INITRD", filepath.Join(a.Repo, "build/linuxboot.cpio"))
	if _, err := os.Stat(a.Initrd); err != nil {
		testenv.NeedFile(t, a.Initrd, "run `make test` (it builds the linuxboot image)")
	}
	return a
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// VM is one QEMU boot of the artifacts.
type VM struct {
	Machine qemu.Machine // default pc
	Disk    string       // raw root disk, virtio; empty for none
	Append  string       // kernel command line after console=
	NoNet   bool
	// NetOptions are more options for QEMU's user network (hostname=, ...).
	NetOptions string
	MemMB      int  // default 256
	Reboot     bool // let the guest reboot instead of ending the run
	Timeout    time.Duration
	// Triggers press buttons through QEMU's monitor when console text
	// appears.
	Triggers []qemu.Trigger
	// FwCfg maps fw_cfg names to host files (the run document).
	FwCfg map[string]string
}

// QEMU is the qemu.VM that Boot runs for vm.
func (a Artifacts) QEMU(vm VM) qemu.VM {
	return qemu.VM{Machine: vm.Machine, Kernel: a.Kernel, Initrd: a.Initrd, Disk: vm.Disk, Append: vm.Append, NoNet: vm.NoNet,
		NetOptions: vm.NetOptions, MemMB: vm.MemMB, Reboot: vm.Reboot, Timeout: vm.Timeout, Triggers: vm.Triggers,
		FwCfg: vm.FwCfg}
}

// Boot runs the VM to its end and returns its console and exit status.
func (a Artifacts) Boot(t *testing.T, vm VM) qemu.Result {
	t.Helper()
	res, err := a.QEMU(vm).Run(context.Background())
	if err != nil {
		t.Fatalf("boot: %v; console:\n%s", err, res.Console)
	}
	t.Logf("VM ran %v, QEMU exit %d", res.Wall.Round(time.Millisecond), res.QEMUExit)
	if os.Getenv("GINIT_TEST_CONSOLE") == "1" {
		t.Logf("console:\n%s", res.Console)
	}
	return res
}

// wantClean checks the console for lines and for the absence of failures.
func wantClean(t *testing.T, res qemu.Result, lines ...string) {
	t.Helper()
	for _, want := range lines {
		if !strings.Contains(res.Console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	// "cut here" opens a kernel WARNING's stack trace.
	for _, bad := range []string{"Kernel panic", "boot failed", "------------[ cut here ]------------"} {
		if strings.Contains(res.Console, bad) {
			t.Errorf("console shows %q", bad)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", res.Console)
	}
}

// BuildProbe builds the test workload statically into dir/probe.
func (a Artifacts) BuildProbe(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "probe"), "./integration/testdata/probe")
	cmd.Dir = a.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
}

var (
	oci2diskOnce sync.Once
	oci2diskPath string
	oci2diskErr  error
)

// oci2disk builds the disk tool once per test binary.
func (a Artifacts) oci2disk(t *testing.T) string {
	t.Helper()
	oci2diskOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ginit-oci2disk-")
		if err != nil {
			oci2diskErr = err
			return
		}
		oci2diskPath = filepath.Join(dir, "oci2disk")
		cmd := exec.Command("go", "build", "-o", oci2diskPath, "./cmds/oci2disk")
		cmd.Dir = a.Repo
		if out, err := cmd.CombinedOutput(); err != nil {
			oci2diskErr = fmt.Errorf("build oci2disk: %v\n%s", err, out)
		}
	})
	if oci2diskErr != nil {
		t.Fatal(oci2diskErr)
	}
	return oci2diskPath
}

// MakeDisk turns root into an ext4 disk with the project's disk tool.
func (a Artifacts) MakeDisk(t *testing.T, root string, args ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	cmdArgs := append([]string{"-q"}, args...)
	cmdArgs = append(cmdArgs, "dir:"+root, img)
	cmd := exec.Command(a.oci2disk(t), cmdArgs...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oci2disk: %v\n%s", err, out)
	}
	return img
}

// Fsck runs e2fsck -fn on img and fails the test if it finds anything.
func Fsck(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// DebugfsCat reads a file out of an ext4 image without mounting it.
func DebugfsCat(t *testing.T, img, path string) string {
	t.Helper()
	cmd := exec.Command("debugfs", "-R", "cat "+path, img)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs cat %s: %v\n%s", path, err, stderr.String())
	}
	return stdout.String()
}
