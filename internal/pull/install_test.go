package pull

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// loopDevice attaches a sparse file of size bytes to a loop device.
func loopDevice(t *testing.T, size int64) (dev, file string) {
	t.Helper()
	testenv.NeedRoot(t, "a loop device, mount, chown and mknod")
	testenv.NeedTools(t, "losetup")
	file = filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", file).Output()
	if err != nil {
		t.Fatalf("losetup %s: %v", file, err)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev, file
}

// Install formats the disk, pulls the image onto it, labels it and leaves
// it unmounted and clean: e2fsck agrees, and the files are there with their
// owners and the source record.
func TestInstall(t *testing.T) {
	dev, file := loopDevice(t, 64<<20)
	ref, _ := tamperingRegistry(t)
	rep, err := Install(context.Background(), "docker://"+ref, dev, Options{})
	if err != nil {
		t.Fatalf("Install(docker://%s, %s) = %v", ref, dev, err)
	}
	if rep.Layers != 2 {
		t.Errorf("Install report = %+v; want 2 layers", rep)
	}
	if out, err := exec.Command("e2fsck", "-fn", file).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn after Install: %v\n%s", err, out)
	}
	if out, _ := exec.Command("blkid", "-o", "value", "-s", "LABEL", file).Output(); strings.TrimSpace(string(out)) != "ginit-root" {
		t.Errorf("label = %q; want ginit-root", out)
	}
	for path, want := range map[string]string{
		"/etc/motd":           "hello\n",
		"/.ginit/source.json": `"source":"docker://` + ref + `"`,
	} {
		out, err := exec.Command("debugfs", "-R", "cat "+path, file).Output()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%s on the disk = %q (%v); want it to hold %q", path, out, err, want)
		}
	}
	out, _ := exec.Command("debugfs", "-R", "stat /bin/app", file).Output()
	if !strings.Contains(string(out), "User:  1000") || !strings.Contains(string(out), "Mode:  04750") {
		t.Errorf("/bin/app on the disk:\n%s\nwant uid 1000, mode 04750", out)
	}
}

// An image that cannot be found leaves the disk as it was; an install that
// fails halfway leaves no label, so the disk never looks like a root to boot.
func TestInstallFailures(t *testing.T) {
	dev, file := loopDevice(t, 64<<20)
	if out, err := exec.Command("mkfs.ext4", "-q", "-L", "keep-me", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v\n%s", dev, err, out)
	}
	label := func() string {
		out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "LABEL", file).Output()
		return strings.TrimSpace(string(out))
	}
	ref, tamper := tamperingRegistry(t)
	host, _, _ := strings.Cut(ref, "/")
	missing := host + "/missing:1"
	if _, err := Install(context.Background(), "docker://"+missing, dev, Options{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Install(a missing image) = %v; want an error naming it", err)
	}
	if got := label(); got != "keep-me" {
		t.Errorf("label after installing a missing image = %q; want keep-me (the disk untouched)", got)
	}
	*tamper = true
	if _, err := Install(context.Background(), "docker://"+ref, dev, Options{}); err == nil || !strings.Contains(err.Error(), "layer 1") {
		t.Errorf("Install(a tampered layer) = %v; want an error naming layer 1", err)
	}
	if got := label(); got != "" {
		t.Errorf("label after a failed install = %q; want none", got)
	}
}
