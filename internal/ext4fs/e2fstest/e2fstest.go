// Package e2fstest checks ext4 images in tests with e2fsprogs, the
// reference the writers here are held to.
package e2fstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// Tool finds an e2fsprogs program, also in /sbin and /usr/sbin, which are
// not on every user's PATH; without it the test is skipped, or fails
// under make test.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	testenv.Missing(t, "needs %s from e2fsprogs (scripts/install-deps.sh installs it)", name)
	return ""
}

// Fsck runs e2fsck -fn on img and fails the test unless it finds it clean.
func Fsck(t testing.TB, img string) {
	t.Helper()
	out, err := exec.Command(Tool(t, "e2fsck"), "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s = %v; want clean\n%s", img, err, out)
	}
}

// Dumpe2fs is dumpe2fs -h's output for img as a map of its fields.
func Dumpe2fs(t testing.TB, img string) map[string]string {
	t.Helper()
	out, err := exec.Command(Tool(t, "dumpe2fs"), "-h", img).Output()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v", img, err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// Mke2fs runs mke2fs -t ext4 with args on a new sparse file of size bytes
// and returns the file and mke2fs's output: 4 KiB blocks, 256-byte inodes
// and metadata_csum, as the writers here make them, set on the command
// line; the host's /etc/mke2fs.conf is left out for mke2fs's built-in one.
func Mke2fs(t testing.TB, size int64, args ...string) (string, string) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	args = append(append([]string{"-t", "ext4", "-F", "-b", "4096", "-I", "256",
		"-O", "has_journal,sparse_super,extent,flex_bg,64bit,metadata_csum",
		"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"}, args...), img)
	cmd := exec.Command(Tool(t, "mke2fs"), args...)
	cmd.Env = append(os.Environ(), "MKE2FS_CONFIG="+filepath.Join(t.TempDir(), "none.conf"), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return img, string(out)
}
