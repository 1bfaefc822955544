package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/imagebuild"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// kernelModules returns the fetched kernel's module directory. Without it
// the test cannot run: it fails when GINIT_VM_TESTS=1 (make test sets it,
// after fetching the kernel, so CI runs it) and skips, saying why,
// otherwise, as integration.FindArtifacts does.
func kernelModules(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("../../build/kernel/lib/modules/*")
	var missing []string
	if len(dirs) != 1 {
		missing = append(missing, "build/kernel/lib/modules/<release> (one)")
	}
	for _, prog := range []string{"go", "xz"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
		}
	}
	if len(missing) > 0 {
		testenv.Missing(t, "the reproducibility test needs %s: run `make kernel` (make test fetches the kernel first)", strings.Join(missing, ", "))
	}
	return dirs[0]
}

// TestReproducibleLinuxboot builds the linuxboot config twice, as mkimage
// does, into two different temp output directories and with u-root's own
// temp directory (TMPDIR, where gbb writes its GOPATH tree) in two
// different places, and wants the same sha256 for the cpio and for the .xz.
//
// What it proves: from one checkout, with one Go toolchain, one kernel's
// modules and one xz, nothing of the build's paths, times or order (gbb's
// temp tree, the output directory, mtimes, directory listing order,
// module order, xz threads) reaches the bytes. What it does not: builds
// on other machines, Go or xz versions, or kernels; nor a checkout at
// another path (-trimpath keeps that out, and scripts/check-reproducible.sh
// run in two clones shows it). It costs two full linuxboot builds, 1-2
// minutes each on 2 cores: gbb compiles with -a, so the Go build cache
// saves only the u-root tool's own build.
func TestReproducibleLinuxboot(t *testing.T) {
	if testing.Short() {
		t.Skip("two linuxboot builds: skipped with -short")
	}
	mods := kernelModules(t)
	build := func(name string) (cpioSum, xzSum string) {
		t.Helper()
		tmp := t.TempDir()
		t.Setenv("TMPDIR", filepath.Join(tmp, "tmp-"+name))
		if err := os.Mkdir(os.Getenv("TMPDIR"), 0o755); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(tmp, "out-"+name)
		start := time.Now()
		res, err := imagebuild.Build(context.Background(), imagebuild.Options{
			Config: "linuxboot", URootConfig: "../../uroot.json", KernelModules: mods, OutDir: out,
			Logf: t.Logf,
		})
		if err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		t.Logf("build %s: %s (%.0fs)", name, res.Summary(), time.Since(start).Seconds())
		return sum(t, filepath.Join(out, "linuxboot.cpio")), sum(t, filepath.Join(out, "linuxboot.cpio.xz"))
	}
	c1, x1 := build("a")
	c2, x2 := build("b")
	t.Logf("linuxboot.cpio    %s  %s", c1, c2)
	t.Logf("linuxboot.cpio.xz %s  %s", x1, x2)
	if c1 != c2 {
		t.Errorf("two builds of linuxboot give different cpio archives: sha256 %s and %s", c1, c2)
	}
	if x1 != x2 {
		t.Errorf("two builds of linuxboot give different .xz files: sha256 %s and %s", x1, x2)
	}
}

func sum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
