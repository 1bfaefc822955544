package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad command lines get one line that says what was wrong, status 125, and
// leave nothing in the output directory.
func TestExportBadInput(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	files := []string{"-o", out, "--kernel", kernel, "--initrd", kernel}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"dir:/"}, "one of --kubevirt, --nomad, --tinkerbell"},
		{[]string{"--kubevirt", "--nomad", "dir:/"}, "one of --kubevirt"},
		{[]string{"--kubevirt", "--boot-ref", "r.example/app:boot", "dir:/"}, "--disk-ref"},
		{[]string{"--kubevirt", "--diskless", "--boot-ref", "r.example/app:boot", "oci:./layout"}, "registry reference"},
		{[]string{"--nomad", "--port", "http", "dir:/"}, "LABEL=PORT"},
		{[]string{"--nomad", "dir:/"}, "URL"},
		{[]string{"--tinkerbell", "--url", "http://x", "--mac", "52:54", "r.example/app:1"}, "MAC address"},
		{[]string{"--nomad", "--url", "http://x", "--kernel", filepath.Join(dir, "missing"), "dir:/"}, "missing"},
		// The disk fails after the kernel and initramfs were copied.
		{[]string{"--nomad", "--url", "http://x", "dir:" + filepath.Join(dir, "nonexistent")}, "nonexistent"},
	} {
		var stdout, stderr bytes.Buffer
		args := append(append([]string{}, files...), tt.args...)
		if got := exportCmd(args, &stdout, &stderr); got != 125 {
			t.Errorf("export %v = %d; want 125", tt.args, got)
		}
		if msg := stderr.String(); !strings.Contains(msg, tt.want) || strings.Count(msg, "\n") != 1 {
			t.Errorf("export %v said %q; want one line with %q", tt.args, msg, tt.want)
		}
		if left, _ := os.ReadDir(out); len(left) > 0 {
			t.Errorf("export %v left %d files in %s", tt.args, len(left), out)
		}
	}
}
