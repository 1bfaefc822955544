package disk

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// Defects of the mkfs.ext4 -d path that the Go writer does not have.

// A hard link to a symlink is one symlink inode with two names (mkfs.ext4
// -d made two inodes, and the conversion failed).
func TestHardLinkToSymlink(t *testing.T) {
	needTools(t)
	tb := mkTar(t, false,
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/lib/libx.so", Linkname: "libx.so.1"}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "usr/lib/libx-again.so", Linkname: "usr/lib/libx.so"}},
	)
	out := filepath.Join(t.TempDir(), "disk.img")
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: "-"}, Stdin: bytes.NewReader(tb), Output: out})
	fsck(t, out)
	a, b := stat(t, out, "/usr/lib/libx.so"), stat(t, out, "/usr/lib/libx-again.so")
	wantMatch(t, "stat libx.so", a, `Type: symlink(.|\n)*Links: 2\b`)
	if ino := strings.Fields(a)[1]; ino != strings.Fields(b)[1] {
		t.Errorf("the two names are inodes %s and %s; want one", ino, strings.Fields(b)[1])
	}
}

// mtimes from 2038 on, in a directory source, keep their epoch bits
// (mkfs.ext4 -d wrapped them to 1901-1970).
func TestDirTimesPast2038(t *testing.T) {
	needTools(t)
	root := t.TempDir()
	p := filepath.Join(root, "future")
	os.WriteFile(p, []byte("2100"), 0o644)
	when := time.Unix(4102444800, 0) // 2100-01-01
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "disk.img")
	build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: root}, Output: out})
	fsck(t, out)
	wantMatch(t, "stat /future", stat(t, out, "/future"), `mtime: 0xf4865700:00000001 -- Fri Jan  1 00:00:00 2100`)
}

// Names with a double quote or a newline on inodes with a capability, an
// xattr, or a device number (debugfs, which set those, cannot quote them).
func TestQuotesAndNewlines(t *testing.T) {
	needTools(t)
	capability := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	names := []string{"bin/\"ping\"", "bin/ping\nagain", "dev/\"null\"\n"}
	tb := mkTar(t, false,
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: names[0], Mode: 0o755, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capability}}, body: "p"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: names[1], Mode: 0o644, PAXRecords: map[string]string{"SCHILY.xattr.user.note": "a \"quoted\"\nvalue"}}, body: "q"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeChar, Name: names[2], Mode: 0o666, Devmajor: 1, Devminor: 3}},
	)
	out := filepath.Join(t.TempDir(), "disk.img")
	rep := build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: "-"}, Stdin: bytes.NewReader(tb), Output: out})
	fsck(t, out)
	if rep.Special != 3 {
		t.Errorf("Special = %d; want 3", rep.Special)
	}
	// debugfs cannot name them: list the directories instead, and read
	// them back through the kernel where the test may mount.
	for _, dir := range []string{"/bin", "/dev"} {
		b, err := ext4img.Debugfs(context.Background(), out, "ls -p "+dir)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"`) {
			t.Errorf("ls %s = %q; want the quoted names", dir, b)
		}
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root: mounts the image to read the names back with the kernel")
	}
	mnt := t.TempDir()
	if b, err := exec.Command("mount", "-o", "loop,ro", out, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, b)
	}
	defer exec.Command("umount", mnt).Run()
	capBuf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(mnt, names[0]), "security.capability", capBuf); err != nil || string(capBuf[:n]) != capability {
		t.Errorf("security.capability of %q = %q, %v", names[0], capBuf[:n], err)
	}
	note := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(mnt, names[1]), "user.note", note); err != nil || string(note[:n]) != "a \"quoted\"\nvalue" {
		t.Errorf("user.note of %q = %q, %v", names[1], note[:n], err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(mnt, names[2]), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("lstat %q = mode %o rdev %d,%d, %v; want a 1,3 character device", names[2], st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
	}
}

// recorder keeps what a progress report was told.
type recorder struct {
	steps []string
	added map[string]int64
	cur   string
}

func (r *recorder) Start(step string, total int64) {
	r.steps = append(r.steps, step)
	r.cur = step
	if r.added == nil {
		r.added = map[string]int64{}
	}
}
func (r *recorder) Add(n int64) { r.added[r.cur] += n }
func (r *recorder) Done()       {}

// Reading a tar: source reports the bytes read (it said "0.0 KiB").
func TestTarProgress(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	body := strings.Repeat("x", 3<<20)
	os.WriteFile(tarPath, mkTar(t, false, tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644}, body: body}), 0o644)
	var rec recorder
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: tarPath}, Output: filepath.Join(dir, "disk.img"), Progress: &rec})
	read := "reading tar:" + tarPath
	if got := rec.added[read]; got < int64(len(body)) {
		t.Errorf("progress of %q = %d bytes; want at least %d (steps %q, counts %v)", read, got, len(body), rec.steps, rec.added)
	}
}

// A dir: source that is an overlayfs mount (podman image mount, buildah
// mount): overlayfs counts its hidden trusted.overlay.* names in
// llistxattr's size and then lists none of them.
func TestOverlayDir(t *testing.T) {
	needTools(t)
	testenv.NeedRoot(t, "mounts an overlayfs to read it as a dir: source")
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower + "/etc/sub", upper, work, merged} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(lower, "etc/sub/old"), []byte("old"), 0o644)
	os.WriteFile(filepath.Join(lower, "etc/hostname"), []byte("box\n"), 0o644)
	if b, err := exec.Command("mount", "-t", "overlay", "overlay", "-o", "lowerdir="+lower+",upperdir="+upper+",workdir="+work, merged).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot mount overlayfs here: %v: %s", err, b)
	}
	defer exec.Command("umount", merged).Run()
	// Replacing a lower directory makes an opaque one in the upper layer
	// (trusted.overlay.opaque), and removing a file a whiteout.
	if err := os.RemoveAll(filepath.Join(merged, "etc/sub")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(merged, "etc/sub"), 0o755)
	os.WriteFile(filepath.Join(merged, "etc/sub/new"), []byte("new"), 0o644)
	if err := unix.Lsetxattr(filepath.Join(merged, "etc/hostname"), "user.kept", []byte("yes"), 0); err != nil {
		t.Logf("no user xattrs on this overlayfs: %v", err)
	}
	out := filepath.Join(t.TempDir(), "disk.img")
	build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: merged}, Output: out})
	fsck(t, out)
	if got := cat(t, out, "/etc/sub/new"); got != "new" {
		t.Errorf("/etc/sub/new = %q", got)
	}
	if b, err := ext4img.Debugfs(context.Background(), out, "ea_list /etc/sub"); err != nil || strings.Contains(string(b), "overlay") {
		t.Errorf("ea_list /etc/sub = %q, %v; want no overlay attributes", b, err)
	}
	if _, err := ext4img.Debugfs(context.Background(), out, "stat /etc/sub/old"); err == nil {
		if b, _ := ext4img.Debugfs(context.Background(), out, "ls /etc/sub"); strings.Contains(string(b), "old") {
			t.Errorf("/etc/sub/old, removed in the overlay, is in the disk")
		}
	}
}
