package integration

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A workload that writes a file and exits 3: its output reaches the console,
// its status reaches QEMU, the file is on the disk and the disk is clean.
func TestEntrypointExitStatusAndDisk(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	root := t.TempDir()
	a.BuildProbe(t, filepath.Join(root, "app"))
	disk := a.MakeDisk(t, root)

	res := a.Boot(t, VM{Disk: disk, Append: `entrypoint="/app/probe write /result.txt 'written in the VM' 3"`})

	for _, want := range []string{"probe: wrote /result.txt", "ginit: entrypoint exited with status 3", "ginit: poweroff"} {
		if !strings.Contains(res.Console, want) {
			t.Errorf("console lacks %q; console:\n%s", want, res.Console)
		}
	}
	if got := res.DebugExitStatus(); got != 3 {
		t.Errorf("QEMU exit status %d decodes to %d; want 3 (QEMU status 7)", res.QEMUExit, got)
	}
	if strings.Contains(res.Console, "Kernel panic") {
		t.Errorf("kernel panic on the console:\n%s", res.Console)
	}
	Fsck(t, disk)
	if got, want := DebugfsCat(t, disk, "/result.txt"), "written in the VM\n"; got != want {
		t.Errorf("/result.txt on the disk = %q; want %q", got, want)
	}
}

// A root= that never appears ends in one clear error line and the onerror
// action, not a kernel panic.
func TestMissingRootFailsCleanly(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	res := a.Boot(t, VM{
		Append:  "root=/dev/vdz ginit.rootwait=2s ginit.onerror=poweroff",
		NoNet:   true,
		Timeout: 60 * time.Second,
	})
	failLines := regexp.MustCompile(`(?m)^ginit: boot failed: .*$`).FindAllString(res.Console, -1)
	if len(failLines) != 1 {
		t.Fatalf("console has %d 'boot failed' lines; want 1:\n%s", len(failLines), res.Console)
	}
	if !strings.Contains(failLines[0], "/dev/vdz") {
		t.Errorf("error line %q does not name the missing device /dev/vdz", failLines[0])
	}
	if strings.Contains(res.Console, "Kernel panic") {
		t.Errorf("kernel panic on the console:\n%s", res.Console)
	}
	if got := res.DebugExitStatus(); got != 125 {
		t.Errorf("QEMU exit status %d decodes to %d; want 125 (boot failed)", res.QEMUExit, got)
	}
}
