package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The kernel command line the disks' boot configs give the second kernel;
// stage2 prints its own, so a test sees which one runs.
const stage2Cmdline = "console=ttyS0 panic=-1 stage2.status="

// ginit.mode=boot on the linuxboot image: osboot finds the grub.cfg that
// Debian 12's update-grub wrote (internal/osfind/testdata, with this
// kernel's release, this disk's UUID and stage2's command line put in),
// whose Advanced submenu holds a twin of the top entry; osboot.entry=
// picks that twin by its GRUB menu path of ids, as GRUB_DEFAULT would.
// osboot loads its kernel and initrd, and ginit kexecs them. The second
// kernel runs with the config's command line after BOOT_IMAGE=, as GRUB
// boots it, and its status (42) is QEMU's.
func TestLinuxbootGRUB(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	release := kernelRelease(t, a.Kernel)
	const uuid = "5c0ffee0-1dea-4bad-a55e-d15c0b0071e5"
	args := "root=UUID=" + uuid + " ro " + stage2Cmdline + "42 stage2.from=grub"
	cmdline := "BOOT_IMAGE=/boot/vmlinuz-" + release + " " + args
	initrd := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(initrd, stage2Initrd(t, a), 0o644); err != nil {
		t.Fatal(err)
	}
	// The real file's kernel, UUID and default command line, swapped for
	// this test's.
	cfg, err := os.ReadFile(filepath.Join(a.Repo, "internal/osfind/testdata/debian12-update-grub.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	const cfgUUID = "3f1b9a4e-27c1-4bd8-9d5e-0c2a4f7e6a11"
	grubCfg := strings.NewReplacer(
		"root=UUID="+cfgUUID+" ro  quiet", args,
		cfgUUID, uuid,
		"6.1.0-28-amd64", release,
	).Replace(string(cfg))
	if n := strings.Count(grubCfg, args); n != 2 {
		t.Fatalf("the grub.cfg has the test's command line %d times; want 2 (the top entry and its twin)", n)
	}
	root := stageTree(t, map[string]string{
		"boot/vmlinuz-" + release:    "@" + a.Kernel,
		"boot/initrd.img-" + release: "@" + initrd,
		"boot/grub/grub.cfg":         grubCfg,
		"etc/os-release":             "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
	})
	disk := mkext4(t, root, uuid, "debian-root", 48)

	twin := "Debian GNU/Linux, with Linux " + release
	entry := "gnulinux-advanced-" + uuid + ">gnulinux-" + release + "-advanced-" + uuid
	res := a.Boot(t, VM{Disk: disk, Append: "ginit.mode=boot ginit.onerror=poweroff osboot.entry=" + entry, NoNet: true, Timeout: 3 * time.Minute})
	wantClean(t, res,
		"ginit: looking for an operating system on the disks: osboot -load -wait 10s -entry "+entry,
		"osboot: /dev/vda: ext4 (UUID="+uuid+" LABEL=debian-root) mounted read-only at /run/osboot/vda",
		"osboot: found 3 boot entries",
		`osboot: [0] Debian GNU/Linux (grub /dev/vda:/boot/grub/grub.cfg, default, id gnulinux-simple-`+uuid+`): kernel /dev/vda:/boot/vmlinuz-`+release+` initrd /dev/vda:/boot/initrd.img-`+release+` cmdline "`+cmdline+`"`,
		"osboot: [1] "+twin+" (grub /dev/vda:/boot/grub/grub.cfg, menu 1>0, id gnulinux-"+release+"-advanced-"+uuid+"): boots as [0]",
		"osboot: [2] "+twin+" (recovery mode)",
		`osboot: loading [1] `+twin+` with command line "`+cmdline+`"`,
		"osboot: loaded [1] "+twin,
		"ginit: kexec",
	)
	wantStage2(t, res.Console, release, cmdline)
	if got := res.DebugExitStatus(); got != 42 {
		t.Errorf("QEMU exit status %d decodes to %d; want 42, stage2's", res.QEMUExit, got)
	}
	logKexecTiming(t, res.Console)
}

// Boot Loader Specification entries on the first partition of an MBR disk
// whose second partition holds no boot config: loader.conf's default is a
// file that is no kernel, so osboot says why it will not load and loads the
// next entry; osboot.append= adds to its command line.
func TestLinuxbootBLSFallback(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	release := kernelRelease(t, a.Kernel)
	initrd := filepath.Join(t.TempDir(), "initrd")
	if err := os.WriteFile(initrd, stage2Initrd(t, a), 0o644); err != nil {
		t.Fatal(err)
	}
	boot := stageTree(t, map[string]string{
		"vmlinuz-" + release:         "@" + a.Kernel,
		"initrd.img-" + release:      "@" + initrd,
		"vmlinuz-broken":             "not a kernel\n",
		"loader/loader.conf":         "default broken*\ntimeout 3\n",
		"loader/entries/broken.conf": "title Broken\nlinux /vmlinuz-broken\noptions console=ttyS0\n",
		"loader/entries/debian.conf": "title Debian\nversion " + release + "\nlinux /vmlinuz-" + release + "\ninitrd /initrd.img-" + release + "\noptions " + stage2Cmdline + "43\noptions stage2.from=bls\n",
	})
	data := stageTree(t, map[string]string{"etc/hostname": "data\n"})
	disk := mbrDisk(t,
		mkext4(t, boot, "0b007000-0000-4000-8000-000000000001", "boot", 40),
		mkext4(t, data, "0b007000-0000-4000-8000-000000000002", "data", 4),
	)

	res := a.Boot(t, VM{Disk: disk, Append: `ginit.mode=boot ginit.onerror=poweroff osboot.append="stage2.extra=appended"`, NoNet: true, Timeout: 3 * time.Minute})
	wantCmdline := stage2Cmdline + "43 stage2.from=bls stage2.extra=appended"
	wantClean(t, res,
		"osboot: /dev/vda1: ext4",
		"osboot: /dev/vda2: ext4",
		"osboot: [0] Broken (bls /dev/vda1:/loader/entries/broken.conf, default)",
		"osboot: [0] Broken: kexec_file_load /dev/vda1:/vmlinuz-broken: exec format error",
		`osboot: loading [1] Debian with command line "`+wantCmdline+`"`,
		"osboot: loaded [1] Debian",
		"ginit: kexec",
	)
	wantStage2(t, res.Console, release, wantCmdline)
	if got := res.DebugExitStatus(); got != 43 {
		t.Errorf("QEMU exit status %d decodes to %d; want 43, stage2's", res.QEMUExit, got)
	}
}

// ginit.mode=boot with no disk to boot from ends in one clear error line
// and the onerror action, on the linuxboot image; on the minimal image,
// which carries no osboot, the line says so.
func TestBootModeFailsCleanly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		find  func(*testing.T) Artifacts
		error string
	}{
		{"linuxboot", FindLinuxboot, "ginit: boot failed: ginit.mode=boot: no operating system found on the disks: no block devices"},
		{"minimal", FindArtifacts, "ginit: boot failed: ginit.mode=boot needs the osboot command, which this image does not carry (stat /bbin/osboot: no such file or directory); the linuxboot image has it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.find(t)
			res := a.Boot(t, VM{Append: "ginit.mode=boot ginit.rootwait=1s ginit.onerror=poweroff", NoNet: true, Timeout: 2 * time.Minute})
			lines := regexp.MustCompile(`(?m)^ginit: boot failed: [^\r\n]*`).FindAllString(res.Console, -1)
			if len(lines) != 1 || lines[0] != tc.error {
				t.Errorf("'boot failed' lines %q; want one: %q\nconsole:\n%s", lines, tc.error, res.Console)
			}
			if strings.Contains(res.Console, "Kernel panic") {
				t.Errorf("kernel panic on the console:\n%s", res.Console)
			}
			if got := res.DebugExitStatus(); got != 125 {
				t.Errorf("QEMU exit status %d decodes to %d; want 125 (boot failed)", res.QEMUExit, got)
			}
		})
	}
}

// wantStage2 checks stage2's line: the second kernel runs with exactly the
// command line the boot config gave it.
func wantStage2(t *testing.T, console, release, cmdline string) {
	t.Helper()
	line := "stage2: running, kernel " + release + ", cmdline " + cmdline
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `\r?$`).MatchString(console) {
		t.Errorf("console lacks the line %q", line)
	}
}

// logKexecTiming logs how long the first kernel took to find and load the
// second (ginit's osboot and loaded marks) and when the second kernel's
// init ran, for the record of what a LinuxBoot boot costs here.
func logKexecTiming(t *testing.T, console string) {
	m := regexp.MustCompile(`ginit: boot timing \(ms since kernel start\): (.*)`).FindStringSubmatch(console)
	if m != nil {
		t.Logf("first kernel: %s", m[1])
	}
}
