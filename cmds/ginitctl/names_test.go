package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A VM name never leads out of the state's vms/: rm -f ../.. once removed
// the state directory itself, images and volumes with it.
func TestVMNamesStayInState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "st")
	keep := filepath.Join(state, "volumes", "data", "disk.img")
	if err := os.MkdirAll(filepath.Dir(keep), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(state, "vms"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"rm", "-f", "--state", state, ".."},
		{"rm", "-f", "--state", state, "../.."},
		{"rm", "--state", state, "../volumes/data"},
		{"stop", "--state", state, ".."},
		{"kill", "--state", state, ".."},
		{"inspect", "--state", state, ".."},
		{"logs", "--state", state, "../volumes"},
	} {
		var out, errs strings.Builder
		status := dispatch(args, &out, &errs)
		if status != 125 || !strings.Contains(errs.String(), "VM name") || strings.Count(errs.String(), "\n") != 1 {
			t.Errorf("%q = %d, %q; want 125 and one line naming the VM name", args, status, errs.String())
		}
		if _, err := os.Stat(keep); err != nil {
			t.Fatalf("after %q: %v; want the state directory untouched", args, err)
		}
	}
}
