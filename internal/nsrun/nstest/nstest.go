// Package nstest holds what the namespace tests of nsrun and chrootrun
// share: static test binaries built once per test run, the root check, and
// bare root directories holding the guest.
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// Bin is a static test binary: the package at Pkg, built as Name, its path
// stored in *Path.
type Bin struct {
	Path      *string
	Name, Pkg string
}

// Main runs the tests of a package whose root tests need static binaries:
// it builds them into a temporary directory, runs m, and cleans up. As
// non-root it builds nothing: the root tests skip.
func Main(m *testing.M, prefix string, bins ...Bin) int {
	if os.Geteuid() != 0 {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range bins {
		*b.Path = filepath.Join(dir, b.Name)
		cmd := exec.Command("go", "build", "-o", *b.Path, b.Pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b.Pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// NeedRoot needs root: the tests create mount and PID namespaces.
func NeedRoot(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "creates mount and PID namespaces and mounts")
}

// NewRoot makes a bare root directory, mode 0755 as / is, holding only the
// guest binary at /nsguest.
func NewRoot(t *testing.T, guest string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(guest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "nsguest"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// WaitServing waits until "/nsguest serve" running in root has its
// SIGTERM handler (it writes /serving then). A PID 1 ignores a signal it
// has no handler for, and SigCgt cannot tell: the Go runtime catches
// SIGTERM from its start and, with no handler yet, exits 2.
func WaitServing(t *testing.T, root string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(root, "serving")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nsguest serve in %s not serving after 30s", root)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
