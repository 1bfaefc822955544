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
