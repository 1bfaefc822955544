package mkext4

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/blockdev"
	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/e2fstest"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// entry is one file the mount test writes and reads back.
type entry struct {
	path     string
	mode     os.FileMode // type and permissions
	uid, gid int
	data     []byte // a small file's content, or a symlink's target
	size     int64  // a big file's size: its content comes from a seeded stream
	rdev     uint64
	nlink    uint64 // 0: not checked
	linkTo   string // a hard link to this earlier entry
	xattrs   map[string]string
}

// bigStream is the content of a big file: a fixed pseudo-random stream.
func bigStream(size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{'b', 'i', 'g'}), size)
}

// capability is a security.capability value (VFS_CAP_REVISION_2) granting
// cap_net_bind_service, as setcap writes it.
var capability = string([]byte{0, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

// testTree is the file set: more than a block group of data in one file,
// thousands of small files, a directory big enough for an htree, deep
// directories, every file type, hard links, owners and xattrs.
func testTree() []entry {
	tree := []entry{
		{path: "dir", mode: os.ModeDir | 0o755},
		{path: "big", mode: 0o644, size: 300 << 20},
		{path: "owned", mode: os.ModeSetuid | 0o750, uid: 100000, gid: 200000, data: []byte("high ids\n")},
		{path: "cap", mode: 0o755, data: []byte("#!/bin/true\n"), xattrs: map[string]string{
			"security.capability": capability,
			"user.comment":        "small, in the inode",
			"user.large":          strings.Repeat("x", 3000), // needs an xattr block
		}},
		{path: "linked", mode: 0o640, uid: 1000, gid: 1000, data: []byte("three names\n"), nlink: 3},
		{path: "link2", linkTo: "linked"},
		{path: "dir/link3", linkTo: "linked"},
		{path: "short-symlink", mode: os.ModeSymlink | 0o777, data: []byte("big")},
		{path: "long-symlink", mode: os.ModeSymlink | 0o777, data: []byte("/" + strings.Repeat("long/", 600) + "target")},
		{path: "null", mode: os.ModeDevice | os.ModeCharDevice | 0o666, rdev: unix.Mkdev(1, 3)},
		{path: "loop9", mode: os.ModeDevice | 0o660, gid: 6, rdev: unix.Mkdev(7, 9)},
		{path: "fifo", mode: os.ModeNamedPipe | 0o600},
		{path: "tmp", mode: os.ModeDir | os.ModeSticky | 0o777},
	}
	deep := "deep"
	for i := range 40 {
		tree = append(tree, entry{path: deep, mode: os.ModeDir | 0o755})
		deep = filepath.Join(deep, fmt.Sprintf("level%02d", i))
	}
	tree = append(tree, entry{path: deep, mode: 0o644, data: []byte("at the bottom\n")})
	tree = append(tree, entry{path: "many", mode: os.ModeDir | 0o755})
	for i := range 3000 {
		data := []byte(strings.Repeat(fmt.Sprintf("file %d\n", i), i%700))
		tree = append(tree, entry{path: fmt.Sprintf("many/file-with-a-longish-name-%05d", i), mode: 0o644, data: data})
	}
	return tree
}

func create(root string, e entry) error {
	p := filepath.Join(root, e.path)
	if e.linkTo != "" {
		return os.Link(filepath.Join(root, e.linkTo), p)
	}
	var err error
	switch e.mode.Type() {
	case os.ModeDir:
		err = os.Mkdir(p, 0o700)
	case os.ModeSymlink:
		err = os.Symlink(string(e.data), p)
	case os.ModeNamedPipe:
		err = unix.Mkfifo(p, 0o600)
	case os.ModeDevice:
		err = unix.Mknod(p, unix.S_IFBLK|0o600, int(e.rdev))
	case os.ModeDevice | os.ModeCharDevice:
		err = unix.Mknod(p, unix.S_IFCHR|0o600, int(e.rdev))
	default:
		err = writeFile(p, e)
	}
	if err != nil {
		return err
	}
	if err := os.Lchown(p, e.uid, e.gid); err != nil {
		return err
	}
	if e.mode.Type() != os.ModeSymlink {
		if err := os.Chmod(p, e.mode); err != nil { // after chown, which clears setuid
			return err
		}
	}
	for name, value := range e.xattrs {
		if err := unix.Lsetxattr(p, name, []byte(value), 0); err != nil {
			return fmt.Errorf("setxattr %s %s: %w", p, name, err)
		}
	}
	return nil
}

func writeFile(p string, e entry) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	var src io.Reader = bytes.NewReader(e.data)
	if e.size > 0 {
		src = bigStream(e.size)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// check compares what is at root with e.
func check(t *testing.T, root string, e entry) {
	t.Helper()
	p := filepath.Join(root, e.path)
	if e.linkTo != "" {
		a, errA := os.Lstat(p)
		b, errB := os.Lstat(filepath.Join(root, e.linkTo))
		if errA != nil || errB != nil || !os.SameFile(a, b) {
			t.Errorf("SameFile(%s, %s) = false (%v, %v); want hard links", e.path, e.linkTo, errA, errB)
		}
		return
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Errorf("Lstat(%s) = %v", e.path, err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != e.mode || int(st.Uid) != e.uid || int(st.Gid) != e.gid {
		t.Errorf("Lstat(%s) = %v %d:%d; want %v %d:%d", e.path, fi.Mode(), st.Uid, st.Gid, e.mode, e.uid, e.gid)
	}
	if e.nlink != 0 && st.Nlink != e.nlink {
		t.Errorf("Lstat(%s).Nlink = %d; want %d", e.path, st.Nlink, e.nlink)
	}
	if e.rdev != 0 && st.Rdev != e.rdev {
		t.Errorf("Lstat(%s).Rdev = %#x; want %#x", e.path, st.Rdev, e.rdev)
	}
	switch e.mode.Type() {
	case os.ModeSymlink:
		if target, err := os.Readlink(p); err != nil || target != string(e.data) {
			t.Errorf("Readlink(%s) = %.40q (%d bytes), %v; want %.40q (%d bytes)", e.path, target, len(target), err, e.data, len(e.data))
		}
	case 0:
		var want io.Reader = bytes.NewReader(e.data)
		if e.size > 0 {
			want = bigStream(e.size)
		}
		if got, want := sum(t, p), sumReader(want); got != want {
			t.Errorf("sha256(%s) = %x; want %x", e.path, got, want)
		}
	}
	for name, want := range e.xattrs {
		buf := make([]byte, 64<<10)
		n, err := unix.Lgetxattr(p, name, buf)
		if err != nil || string(buf[:max(n, 0)]) != want {
			t.Errorf("getxattr(%s, %s) = %.30q, %v; want %.30q", e.path, name, buf[:max(n, 0)], err, want)
		}
	}
}

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Error(err)
		return [32]byte{}
	}
	defer f.Close()
	return sumReader(f)
}

func sumReader(r io.Reader) [32]byte {
	h := sha256.New()
	io.Copy(h, r)
	return [32]byte(h.Sum(nil))
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// mount mounts dev on a new directory until the test ends or unmount is
// called.
func mount(t *testing.T, dev string) (dir string, unmount func()) {
	t.Helper()
	dir = t.TempDir()
	run(t, "mount", "-t", "ext4", dev, dir)
	mounted := true
	unmount = func() {
		if mounted {
			mounted = false
			run(t, "umount", dir)
		}
	}
	t.Cleanup(func() {
		if mounted {
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir, unmount
}

// The kernel mounts the file system on a loop device, takes a tree of
// every kind of file and gives it back after a remount, and e2fsck finds
// it clean all along. Old data lies under the inode tables, which Format
// does not write.
func TestMountWriteReadBack(t *testing.T) {
	testenv.NeedRoot(t, "sets up a loop device and mounts it")
	testenv.NeedTools(t, "losetup", "mount", "umount")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := rand.NewChaCha8([32]byte{'o', 'l', 'd'})
	if _, err := io.Copy(f, io.LimitReader(garbage, 64<<20)); err != nil {
		t.Fatal(err)
	}
	// An old MBR with one partition, which the kernel must forget.
	mbr := make([]byte, 66)
	copy(mbr[4:], []byte{0x83, 0, 0, 0})  // Linux, no CHS
	ext4fs.LE.PutUint32(mbr[8:], 2048)    // first sector
	ext4fs.LE.PutUint32(mbr[12:], 100000) // sectors
	copy(mbr[64:], []byte{0x55, 0xAA})    // signature
	if _, err := f.WriteAt(mbr, 446); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()

	dev := run(t, "losetup", "--find", "--show", "--partscan", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	part := "/sys/class/block/" + filepath.Base(dev) + "p1"
	hadPart := fileExists(part)
	if !hadPart {
		t.Logf("%s missing: this kernel reads no MBR, so the partition's removal is not checked", part)
	}
	if err := Format(dev, Options{Label: "ginit-root", UUID: testUUID, Time: testTime}); err != nil {
		t.Fatalf("Format(%s) = %v; want nil", dev, err)
	}
	if hadPart && fileExists(part) {
		t.Errorf("%s still there after Format; want the old partition gone", part)
	}
	if s, err := blockdev.Probe(dev); err != nil || s.Label != "ginit-root" || s.UUID != testUUIDString {
		t.Errorf("blockdev.Probe(%s) = %+v, %v; want ginit-root, %s", dev, s, err, testUUIDString)
	}
	if got := e2fstest.Dumpe2fs(t, dev)["Block count"]; got != "262144" {
		t.Errorf("dumpe2fs %s block count = %s; want 262144, the whole device", dev, got)
	}
	e2fstest.Fsck(t, dev)

	tree := testTree()
	dir, unmount := mount(t, dev)
	for _, e := range tree {
		if err := create(dir, e); err != nil {
			t.Fatalf("create %s: %v", e.path, err)
		}
	}
	if err := Format(dev, Options{}); !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), dev) {
		t.Errorf("Format(%s) while mounted = %v; want EBUSY naming the device", dev, err)
	}
	unmount()
	e2fstest.Fsck(t, dev)

	dir, unmount = mount(t, dev)
	for _, e := range tree {
		check(t, dir, e)
	}
	unmount()
	e2fstest.Fsck(t, dev)
}
