package treecopy

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/testenv"
)

func TestCopy(t *testing.T) {
	testenv.NeedRoot(t, "owners other than the caller's, device nodes")
	src, dst := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(src, "sub"), 0o750))
	must(os.WriteFile(filepath.Join(src, "sub/run"), []byte("data"), 0o755))
	must(os.Symlink("sub/run", filepath.Join(src, "link")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Lchown(filepath.Join(src, "sub"), 1000, 1001))
	must(os.Lchown(filepath.Join(src, "sub/run"), 1000, 1001))
	must(os.Chmod(filepath.Join(src, "sub/run"), 0o4755|os.ModeSetuid))
	must(os.Lchown(filepath.Join(src, "link"), 1002, 1002))
	must(os.Chmod(src, 0o1777))
	old := time.Unix(1_000_000_000, 0)
	must(os.Chtimes(filepath.Join(src, "sub/run"), old, old))

	if err := Copy(src, dst); err != nil {
		t.Fatalf("Copy = %v", err)
	}
	for _, name := range []string{".", "sub", "sub/run", "link", "fifo", "null"} {
		var a, b unix.Stat_t
		must(unix.Lstat(filepath.Join(src, name), &a))
		must(unix.Lstat(filepath.Join(dst, name), &b))
		if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev {
			t.Errorf("%s: mode %#o uid %d gid %d rdev %d; want %#o %d %d %d", name, b.Mode, b.Uid, b.Gid, b.Rdev, a.Mode, a.Uid, a.Gid, a.Rdev)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "link")); err != nil || string(b) != "data" {
		t.Errorf("link reads %q, %v; want data through the copied link", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "sub/run")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("sub/run modified %v, %v; want %v", fi.ModTime(), err, old)
	}
	// Into a directory that already holds the name: an error naming it.
	if err := Copy(src, dst); err == nil {
		t.Errorf("Copy into a full directory = nil; want an error")
	}
}
