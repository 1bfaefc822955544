package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/osfind"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// fakeSystem is osboot on the block devices of sysBlock, with load and
// boot recorded instead of done.
type fakeSystem struct {
	system
	out, errOut bytes.Buffer
	loaded      []string // entry names, in the order load was called
	extras      []string
	loadErr     map[string]error // by entry name
	booted      int
	// mountedAtBoot is what was still mounted under the mount directory
	// when boot was called.
	mountedAtBoot []string
}

func newFake(t *testing.T, sysBlock, devDir string) *fakeSystem {
	f := &fakeSystem{loadErr: map[string]error{}}
	mountDir := filepath.Join(t.TempDir(), "osboot")
	f.system = system{
		machine: &osfind.Machine{SysBlock: sysBlock, DevDir: devDir, MountDir: mountDir},
		load: func(e osfind.Entry, extra string) error {
			f.loaded = append(f.loaded, e.Name)
			f.extras = append(f.extras, extra)
			return f.loadErr[e.Name]
		},
		boot: func() error {
			f.booted++
			f.mountedAtBoot = mountsUnder(t, mountDir)
			return nil
		},
		stdout: &f.out,
		stderr: &f.errOut,
	}
	return f
}

func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-nosuch"}, {"extra-arg"}, {"-wait", "soon"}} {
		f := newFake(t, t.TempDir(), "/dev")
		if got := run(args, f.system); got != 2 {
			t.Errorf("osboot %q = %d; want 2", args, got)
		}
		if bad := args[len(args)-1]; !strings.Contains(f.errOut.String(), bad) || !strings.Contains(f.errOut.String(), "osboot --help") {
			t.Errorf("osboot %q: stderr %q; want %q named and osboot --help pointed at", args, f.errOut.String(), bad)
		}
	}
}

// With no disk at all, osboot says so in one line on stderr and exits 1.
func TestNoDisks(t *testing.T) {
	f := newFake(t, t.TempDir(), "/dev")
	if got := run([]string{"-load"}, f.system); got != 1 {
		t.Errorf("osboot -load with no disks = %d; want 1", got)
	}
	if got, want := f.errOut.String(), "osboot: no operating system found on the disks: no block devices\n"; got != want {
		t.Errorf("stderr = %q; want %q", got, want)
	}
	if len(f.loaded) != 0 || f.booted != 0 {
		t.Errorf("loaded %v, booted %d times; want nothing", f.loaded, f.booted)
	}
}

// loopDisk makes an ext4 disk of files, attaches it to a loop device, and
// returns a /sys/class/block and /dev that show it (as vdz) and nothing
// else of the host's disks.
func loopDisk(t *testing.T, uuid string, files map[string]string) (sysBlock, devDir string) {
	t.Helper()
	testenv.NeedRoot(t, "attaches a loop device and mounts it")
	testenv.NeedTools(t, "mkfs.ext4", "losetup")
	dir := t.TempDir()
	stage := filepath.Join(dir, "stage")
	for name, content := range files {
		p := filepath.Join(stage, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "disk.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-U", uuid, "-d", stage, img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", "-r", img).Output()
	if err != nil {
		testenv.Missing(t, "no loop device: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	sysBlock = filepath.Join(dir, "sys")
	devDir = filepath.Join(dir, "dev")
	for _, d := range []string{filepath.Join(sysBlock, "vdz"), devDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sysBlock, "vdz", "size"), []byte("16384\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(loop, filepath.Join(devDir, "vdz")); err != nil {
		t.Fatal(err)
	}
	return sysBlock, devDir
}

const testUUID = "6b1e3c2a-9d4f-4e8a-b7c6-1a2b3c4d5e6f"

var testDisk = map[string]string{
	"boot/grub/grub.cfg": `set default=1
menuentry 'Other' { linux /boot/vmlinuz-2 root=UUID=` + testUUID + ` other }
menuentry 'Debian' --id debian { search --fs-uuid --set=root ` + testUUID + `; linux /boot/vmlinuz-1 root=UUID=` + testUUID + ` ro; initrd /boot/initrd.img-1 }
`,
	"boot/vmlinuz-1":        "kernel 1",
	"boot/initrd.img-1":     "initrd 1",
	"boot/vmlinuz-2":        "kernel 2",
	"etc/os-release":        "ID=debian\n",
	"lost+found/.keep":      "",
	"boot/grub/grubenv":     "# GRUB Environment Block\n####",
	"boot/config-1":         "",
	"boot/System.map-1":     "",
	"boot/grub/unicode.pf2": "",
}

// On a real ext4 disk: osboot mounts it read-only, finds the GRUB entries
// (the default first), loads the first that loads, unmounts everything, and
// boots only without -load.
func TestLoopDisk(t *testing.T) {
	sysBlock, devDir := loopDisk(t, testUUID, testDisk)
	dev := filepath.Join(devDir, "vdz")

	t.Run("list", func(t *testing.T) {
		f := newFake(t, sysBlock, devDir)
		if got := run([]string{"-list"}, f.system); got != 0 {
			t.Fatalf("osboot -list = %d; want 0; stderr %s", got, f.errOut.String())
		}
		out := f.out.String()
		for _, want := range []string{
			"osboot: " + dev + ": ext4 (UUID=" + testUUID + ") mounted read-only at " + filepath.Join(f.machine.MountDir, "vdz") + "\n",
			"osboot: found 2 boot entries in ",
			`osboot: [0] Debian (grub ` + dev + `:/boot/grub/grub.cfg, default, id debian): kernel ` + dev + `:/boot/vmlinuz-1 initrd ` + dev + `:/boot/initrd.img-1 cmdline "BOOT_IMAGE=/boot/vmlinuz-1 root=UUID=` + testUUID + ` ro"` + "\n",
			`osboot: [1] Other (grub ` + dev + `:/boot/grub/grub.cfg): kernel ` + dev + `:/boot/vmlinuz-2 cmdline "BOOT_IMAGE=/boot/vmlinuz-2 root=UUID=` + testUUID + ` other"` + "\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if len(f.loaded) != 0 {
			t.Errorf("-list loaded %v", f.loaded)
		}
		if m := mountsUnder(t, f.machine.MountDir); len(m) != 0 {
			t.Errorf("still mounted after osboot: %v", m)
		}
		if _, err := os.Stat(f.machine.MountDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mount directory %s left behind: %v", f.machine.MountDir, err)
		}
	})

	t.Run("load falls back to the next entry", func(t *testing.T) {
		f := newFake(t, sysBlock, devDir)
		f.loadErr["Debian"] = errors.New("exec format error")
		if got := run([]string{"-load", "-append", "console=ttyS0"}, f.system); got != 0 {
			t.Fatalf("osboot -load = %d; want 0; stderr %s", got, f.errOut.String())
		}
		if got, want := strings.Join(f.loaded, ","), "Debian,Other"; got != want {
			t.Errorf("loaded %s; want %s", got, want)
		}
		if f.extras[1] != "console=ttyS0" {
			t.Errorf("extra command line %q; want console=ttyS0", f.extras[1])
		}
		for _, want := range []string{
			"osboot: [0] Debian: exec format error\n",
			`osboot: loading [1] Other with command line "BOOT_IMAGE=/boot/vmlinuz-2 root=UUID=` + testUUID + ` other console=ttyS0"` + "\n",
			"osboot: loaded [1] Other\n",
		} {
			if !strings.Contains(f.out.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, f.out.String())
			}
		}
		if f.booted != 0 {
			t.Errorf("-load booted")
		}
		if m := mountsUnder(t, f.machine.MountDir); len(m) != 0 {
			t.Errorf("still mounted after osboot: %v", m)
		}
	})

	t.Run("boot unmounts first", func(t *testing.T) {
		f := newFake(t, sysBlock, devDir)
		if got := run([]string{"-entry", "Other"}, f.system); got != 0 {
			t.Fatalf("osboot -entry Other = %d; want 0; stderr %s", got, f.errOut.String())
		}
		if got := strings.Join(f.loaded, ","); got != "Other" {
			t.Errorf("loaded %s; want Other", got)
		}
		if f.booted != 1 || len(f.mountedAtBoot) != 0 {
			t.Errorf("booted %d times with %v mounted; want once with nothing", f.booted, f.mountedAtBoot)
		}
	})

	t.Run("nothing loads", func(t *testing.T) {
		f := newFake(t, sysBlock, devDir)
		f.loadErr["Debian"] = errors.New("bad 1")
		f.loadErr["Other"] = errors.New("bad 2")
		if got := run([]string{"-load"}, f.system); got != 1 {
			t.Fatalf("osboot -load = %d; want 1", got)
		}
		if got, want := f.errOut.String(), "osboot: no entry loaded: [0] Debian: bad 1; [1] Other: bad 2\n"; got != want {
			t.Errorf("stderr = %q; want %q", got, want)
		}
	})

	t.Run("unknown entry", func(t *testing.T) {
		f := newFake(t, sysBlock, devDir)
		if got := run([]string{"-load", "-entry", "7"}, f.system); got != 1 {
			t.Fatalf("osboot -entry 7 = %d; want 1", got)
		}
		if got, want := f.errOut.String(), "osboot: entry 7: there are 2 entries (0 to 1)\n"; got != want {
			t.Errorf("stderr = %q; want %q", got, want)
		}
		if m := mountsUnder(t, f.machine.MountDir); len(m) != 0 {
			t.Errorf("still mounted after osboot: %v", m)
		}
	})
}

// A disk with a filesystem but nothing to boot: the error names the device.
func TestLoopDiskNothingToBoot(t *testing.T) {
	sysBlock, devDir := loopDisk(t, testUUID, map[string]string{"etc/hostname": "x\n"})
	f := newFake(t, sysBlock, devDir)
	if got := run([]string{"-load"}, f.system); got != 1 {
		t.Fatalf("osboot -load = %d; want 1", got)
	}
	want := "osboot: no operating system found on the disks: no GRUB, syslinux or BLS config with a Linux entry and no /boot/vmlinuz-* on " + filepath.Join(devDir, "vdz") + "\n"
	if got := f.errOut.String(); got != want {
		t.Errorf("stderr = %q; want %q", got, want)
	}
}

// The grub.cfg Debian 12's update-grub wrote (internal/osfind/testdata):
// the submenu's twin of the top entry is listed in short and can be picked
// by its menu path; when the default fails to load, its twin is not tried
// again.
func TestLoopDiskUpdateGrub(t *testing.T) {
	const uuid = "3f1b9a4e-27c1-4bd8-9d5e-0c2a4f7e6a11"
	cfg, err := os.ReadFile("../../internal/osfind/testdata/debian12-update-grub.cfg")
	if err != nil {
		t.Fatal(err)
	}
	sysBlock, devDir := loopDisk(t, uuid, map[string]string{
		"boot/grub/grub.cfg":             string(cfg),
		"boot/vmlinuz-6.1.0-28-amd64":    "kernel",
		"boot/initrd.img-6.1.0-28-amd64": "initrd",
	})
	dev := filepath.Join(devDir, "vdz")
	const (
		top      = "Debian GNU/Linux"
		advanced = "Debian GNU/Linux, with Linux 6.1.0-28-amd64"
		recovery = "Debian GNU/Linux, with Linux 6.1.0-28-amd64 (recovery mode)"
	)

	t.Run("list", func(t *testing.T) {
		f := newFake(t, sysBlock, devDir)
		if got := run([]string{"-list"}, f.system); got != 0 {
			t.Fatalf("osboot -list = %d; want 0; stderr %s", got, f.errOut.String())
		}
		for _, want := range []string{
			"osboot: found 3 boot entries in ",
			`osboot: [0] ` + top + ` (grub ` + dev + `:/boot/grub/grub.cfg, default, id gnulinux-simple-` + uuid + `): kernel ` + dev + `:/boot/vmlinuz-6.1.0-28-amd64 initrd ` + dev + `:/boot/initrd.img-6.1.0-28-amd64 cmdline "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=UUID=` + uuid + ` ro quiet"` + "\n",
			`osboot: [1] ` + advanced + ` (grub ` + dev + `:/boot/grub/grub.cfg, menu 1>0, id gnulinux-6.1.0-28-amd64-advanced-` + uuid + `): boots as [0]` + "\n",
			`osboot: [2] ` + recovery + ` (grub ` + dev + `:/boot/grub/grub.cfg, menu 1>1, id gnulinux-6.1.0-28-amd64-recovery-` + uuid + `): kernel `,
		} {
			if !strings.Contains(f.out.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, f.out.String())
			}
		}
	})

	for _, sel := range []string{"1", advanced, "gnulinux-6.1.0-28-amd64-advanced-" + uuid, "1>0", "gnulinux-advanced-" + uuid + ">gnulinux-6.1.0-28-amd64-advanced-" + uuid} {
		t.Run("entry "+sel, func(t *testing.T) {
			f := newFake(t, sysBlock, devDir)
			if got := run([]string{"-load", "-entry", sel}, f.system); got != 0 {
				t.Fatalf("osboot -entry %q = %d; want 0; stderr %s", sel, got, f.errOut.String())
			}
			if got := strings.Join(f.loaded, ","); got != advanced {
				t.Errorf("osboot -entry %q loaded %q; want %q", sel, got, advanced)
			}
			want := `osboot: loading [1] ` + advanced + ` with command line "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=UUID=` + uuid + ` ro quiet"`
			if !strings.Contains(f.out.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, f.out.String())
			}
		})
	}

	t.Run("twin not tried twice", func(t *testing.T) {
		f := newFake(t, sysBlock, devDir)
		f.loadErr[top] = errors.New("exec format error")
		if got := run([]string{"-load"}, f.system); got != 0 {
			t.Fatalf("osboot -load = %d; want 0; stderr %s", got, f.errOut.String())
		}
		if got, want := strings.Join(f.loaded, "|"), top+"|"+recovery; got != want {
			t.Errorf("loaded %s; want %s", got, want)
		}
	})
}
