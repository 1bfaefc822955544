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
		if _, err := os.Stat(out); err == nil {
			t.Errorf("export %v left %s behind", tt.args, out)
		}
	}
}

// Each engine's export writes its files and lists them, one a line.
func TestExportWrites(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	root := filepath.Join(dir, "root")
	if err := os.WriteFile(kernel, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		engine []string
		image  string
		want   []string
	}{
		{[]string{"--nomad", "--url", "http://files.example/app", "--port", "http=8080"}, "dir:" + root,
			[]string{"vmlinuz", "initramfs", "disk.img", "job.nomad.hcl"}},
		{[]string{"--kubevirt", "--disk-ref", "r.example/app:disk", "--boot-ref", "r.example/app:boot"}, "dir:" + root,
			[]string{"vm.yaml", "images.tar"}},
		{[]string{"--tinkerbell", "--url", "http://files.example/app", "--mac", "52:54:00:12:34:56"}, "r.example/app:1",
			[]string{"hardware.yaml", "boot.ipxe", "vmlinuz", "initramfs"}},
	} {
		out := filepath.Join(t.TempDir(), "out")
		var stdout, stderr bytes.Buffer
		args := append([]string{"-o", out, "--kernel", kernel, "--initrd", kernel}, tt.engine...)
		if got := exportCmd(append(args, tt.image), &stdout, &stderr); got != 0 {
			t.Fatalf("export %v = %d; stderr %q", tt.engine, got, stderr.String())
		}
		var want []string
		for _, f := range tt.want {
			want = append(want, filepath.Join(out, f))
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("export %v: %v", tt.engine, err)
			}
		}
		if got := strings.Fields(stdout.String()); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("export %v listed %q; want %q", tt.engine, got, want)
		}
	}
}
