package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// Extract then Materialize, as root, gives the tree the image's owners,
// modes, device nodes, xattrs and mtimes. A tmpfs mounted noatime stands
// for the diskless root.
func TestMaterialize(t *testing.T) {
	testenv.NeedRoot(t, "chown, mknod and a tmpfs mount")
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOATIME, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", root, err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })

	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mt := time.Unix(1700000000, 0)
	cap := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "srv/", Mode: 0o750, Uid: 1000, Gid: 1000},
		{Typeflag: tar.TypeReg, Name: "srv/data", Mode: 0o640, Uid: 1234, Gid: 5678, Size: 4},
		{Typeflag: tar.TypeReg, Name: "bin/su", Mode: 0o4755, Size: 1},
		{Typeflag: tar.TypeReg, Name: "bin/ping", Mode: 0o755, Size: 1, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": cap}},
		{Typeflag: tar.TypeLink, Name: "bin/ping2", Linkname: "bin/ping"},
		{Typeflag: tar.TypeSymlink, Name: "srv/link", Linkname: "data", Uid: 1000, Gid: 1000},
		{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Gid: 6, Devmajor: 7},
		{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o620},
		{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777},
	}
	for _, h := range hdrs {
		h.ModTime, h.Format = mt, tar.FormatPAX
		tw.WriteHeader(h)
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	res, err := ExtractWith(context.Background(), &b, root, Options{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if err := Materialize(root, res); err != nil {
		t.Fatalf("Materialize: %v", err)
	}
	for _, w := range []struct {
		rel      string
		mode     uint32 // type and permission bits, as stat(2) has them
		uid, gid uint32
		rdev     uint64
	}{
		{"srv", unix.S_IFDIR | 0o750, 1000, 1000, 0},
		{"srv/data", unix.S_IFREG | 0o640, 1234, 5678, 0},
		{"bin/su", unix.S_IFREG | 0o4755, 0, 0, 0},
		{"srv/link", unix.S_IFLNK | 0o777, 1000, 1000, 0},
		{"dev/null", unix.S_IFCHR | 0o666, 0, 0, unix.Mkdev(1, 3)},
		{"dev/loop0", unix.S_IFBLK | 0o660, 0, 6, unix.Mkdev(7, 0)},
		{"run/fifo", unix.S_IFIFO | 0o620, 0, 0, 0},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0, 0},
	} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, w.rel), &st); err != nil {
			t.Errorf("lstat %s: %v", w.rel, err)
			continue
		}
		if st.Mode != w.mode || st.Uid != w.uid || st.Gid != w.gid || st.Rdev != w.rdev {
			t.Errorf("%s: mode %o uid %d gid %d rdev %#x; want mode %o uid %d gid %d rdev %#x",
				w.rel, st.Mode, st.Uid, st.Gid, st.Rdev, w.mode, w.uid, w.gid, w.rdev)
		}
		if st.Mtim.Sec != mt.Unix() {
			t.Errorf("%s: mtime %d; want %d", w.rel, st.Mtim.Sec, mt.Unix())
		}
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(root, "bin/ping2"), "security.capability", buf)
	if err != nil || string(buf[:n]) != cap {
		t.Errorf("bin/ping2 security.capability = %q, %v; want %q", buf[:max(n, 0)], err, cap)
	}
	a, _ := os.Stat(filepath.Join(root, "bin/ping"))
	c, _ := os.Stat(filepath.Join(root, "bin/ping2"))
	if a.Sys().(*syscall.Stat_t).Ino != c.Sys().(*syscall.Stat_t).Ino {
		t.Errorf("bin/ping and bin/ping2 are not one inode")
	}
}
