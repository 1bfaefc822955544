package ext4w

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/ext4fs/e2fstest"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// built is an image and the tree it was written from.
type built struct {
	img  string
	tree *Tree
	p    Params
}

func buildImage(t testing.TB, p Params, layers ...[]byte) built {
	t.Helper()
	dir := t.TempDir()
	tr := NewTree(newImageFile(t, dir, true), Options{})
	for _, l := range layers {
		if err := tr.Apply(context.Background(), bytes.NewReader(l), len(layers) > 1); err != nil {
			t.Fatal(err)
		}
	}
	return writeTree(t, tr, p, dir)
}

func writeTree(t testing.TB, tr *Tree, p Params, dir string) built {
	t.Helper()
	if p.Free == 0 && p.Size == 0 {
		p.Free = 4 << 20
	}
	if p.HashSeed == ([16]byte{}) {
		p.HashSeed = [16]byte{4, 5, 6}
	}
	pl, err := tr.Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Write(IDs{UUID: [16]byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	img := tr.File.File().Name()
	disktest.Fsck(t, img)
	return built{img, tr, p}
}

// listTree is what a mount of the tree's image must show: one line per
// path (the root left out).
func listTree(b built) []string {
	var out []string
	var walk func(d *Node, dir string)
	walk = func(d *Node, dir string) {
		for _, name := range d.Names() {
			n := d.children[name]
			p := dir + "/" + name
			m := n.Mtime
			if n.fixed || b.p.Clamp && m > b.p.Time {
				m = b.p.Time
			}
			line := fmt.Sprintf("%q %o %d:%d %d links=%d", p, n.Mode, n.UID, n.GID, m, n.links)
			switch n.Type() {
			case TypeReg:
				line += fmt.Sprintf(" %d %s", n.Data.Size, treeHash(b.tree, n.Data))
			case TypeSymlink:
				line += fmt.Sprintf(" -> %q", n.Target)
			case TypeChar, TypeBlock:
				line += fmt.Sprintf(" %d,%d", n.Major, n.Minor)
			}
			for _, x := range n.Xattrs {
				line += fmt.Sprintf(" %s=%q", x.Name, x.Value)
			}
			out = append(out, line)
			if n.IsDir() {
				walk(n, p)
			}
		}
	}
	walk(b.tree.Root, "")
	return out
}

// maxHashed: larger files are compared by size (and tested on their own).
const maxHashed = 64 << 20

// treeHash is the sha256 of a file of the tree, holes read as zeros.
func treeHash(tr *Tree, d Data) string {
	if d.Size > maxHashed {
		return "large"
	}
	b, err := tr.File.ReadFile(d)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// listMount lists a mounted image the way listTree lists its tree.
func listMount(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root)
		line := fmt.Sprintf("%q %o %d:%d %d links=%d", rel, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Nlink)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			sum := "large"
			if st.Size <= maxHashed {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				h := sha256.New()
				_, err = io.Copy(h, f)
				f.Close()
				if err != nil {
					return err
				}
				sum = fmt.Sprintf("%x", h.Sum(nil))
			}
			line += fmt.Sprintf(" %d %s", st.Size, sum)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" -> %q", target)
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		xs, err := hostXattrs(p)
		if err != nil {
			return err
		}
		for _, x := range xs {
			line += fmt.Sprintf(" %s=%q", x.Name, x.Value)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkMount mounts the image read-only through a loop device, as root,
// and compares what the kernel reads with the tree.
func checkMount(t testing.TB, b built) {
	t.Helper()
	testenv.NeedRoot(t, "mounts the image through a loop device to read it back with the kernel")
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,ro", b.img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", b.img, err, out)
	}
	defer func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	}()
	got, want := listMount(t, dir), listTree(b)
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the kernel reads %d entries and the tree has %d; first difference:", len(got), len(want))
		for i := 0; i < max(len(got), len(want)); i++ {
			var g, w string
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("kernel: %s\ntree:   %s", g, w)
				break
			}
		}
	}
}

func reg(name, body string, mode int64, uid, gid int) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: gid}, body: body}
}

func dirEnt(name string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

// acl is a POSIX ACL in its xattr form: user::rw-, user:1000:r--,
// group::r--, mask::r--, other::---.
var acl = string([]byte{2, 0, 0, 0,
	1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff,
	2, 0, 4, 0, 0xe8, 3, 0, 0,
	4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
	0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff,
	0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})

// Every file type, odd names, large ids, times past 2038 and before 1970,
// attributes in the inode and in a block, ACLs.
func TestEveryFileType(t *testing.T) {
	capability := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	b := buildImage(t, Params{Label: "types", Time: 1700000000},
		mkTar(t,
			dirEnt("d/", 0o755),
			reg("d/plain", "hello\n", 0o644, 0, 0),
			reg("d/empty", "", 0o600, 0, 0),
			reg("d/setuid", "s", 0o4755, 0, 0),
			dirEnt("d/sticky/", 0o1777),
			reg("d/big ids", "ids", 0o640, 100000, 2000000000),
			ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "d/future", Mode: 0o644, ModTime: time.Unix(4102444800, 0)}, body: "2100"},
			ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "d/past", Mode: 0o644, ModTime: time.Unix(-100000, 0)}, body: "1969"},
			reg("d/quote\"d", "q", 0o644, 0, 0),
			reg("d/new\nline", "n", 0o644, 0, 0),
			reg("d/bad \xff\xfe utf-8", "u", 0o644, 0, 0),
			reg("d/"+strings.Repeat("n", 255), "long name", 0o644, 0, 0),
			reg("d/multi", strings.Repeat("0123456789abcdef", 70000), 0o644, 0, 0),
			ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "d/short", Linkname: "plain"}},
			ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "d/long", Linkname: strings.Repeat("x/", 200) + "end"}},
			ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "d/short-again", Linkname: "d/short"}},
			ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "d/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
			ent{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "d/vd\"a\n", Mode: 0o660, Devmajor: 259, Devminor: 70000}},
			ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "d/vda-again", Linkname: "d/vd\"a\n"}},
			ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "d/fifo", Mode: 0o600}},
			ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "d/cap \"ping\"\n", Mode: 0o755, PAXRecords: map[string]string{
				"SCHILY.xattr.security.capability": capability}}, body: "p"},
			ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "d/xattrs", Mode: 0o644, PAXRecords: map[string]string{
				"SCHILY.xattr.user.small":              "v",
				"SCHILY.xattr.user.big":                strings.Repeat("b", 1000),
				"SCHILY.xattr.trusted.t":               "trusted",
				"SCHILY.xattr.user.empty":              "",
				"SCHILY.xattr.system.posix_acl_access": acl}}, body: "x"},
			ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/acl-dir/", Mode: 0o755, PAXRecords: map[string]string{
				"SCHILY.xattr.system.posix_acl_default": acl}}},
		))
	for p, re := range map[string]string{
		"/d/future":    `mtime: 0xf4865700:00000001`,
		"/d/big ids":   `User:\s+100000\s+Group:\s+2000000000\b`,
		"/d/short":     `Type: symlink(.|\n)*Links: 2\b`,
		"/d/vda-again": `Type: block special(.|\n)*Links: 2\b(.|\n)*Device major/minor number: 259:70000`,
		"/d/setuid":    `Mode:\s+04755`,
		"/d/sticky":    `Mode:\s+01777`,
		"/d/multi":     `Size: 1120000\b`,
		"/d/null":      `Type: character special(.|\n)*Device major/minor number: 01:03`,
		"/lost+found":  `Inode: 11\s+Type: directory\s+Mode:\s+0700(.|\n)*Size: 16384`,
		"/d/long":      `Type: symlink(.|\n)*Size: 403\b`,
		"/d/empty":     `Size: 0\b`,
		"/d/acl-dir":   `Type: directory`,
		"/d/xattrs":    `Size: 1\b`,
		"/d/plain":     `crtime: 0x6553f100:00000000`,
		"/d/past":      `mtime: 0xfffe7960:00000000`,
		"/d/fifo":      `Type: FIFO`,
		"/d/" + "nnnn": ``,
	} {
		if strings.Contains(p, "nnnn") {
			continue
		}
		wantMatch(t, "stat "+p, debugfs(t, b.img, `stat "`+p+`"`), re)
	}
	ea := debugfs(t, b.img, `ea_list "/d/xattrs"`)
	for _, want := range []string{"user.small (1) = \"v\"", "user.big (1000)", "trusted.t (7) = \"trusted\"", "user.empty (0)", "system.posix_acl_access"} {
		if !strings.Contains(ea, want) {
			t.Errorf("ea_list /d/xattrs = %q; want %q in it", ea, want)
		}
	}
	checkMount(t, b)
}

func link(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func whiteout(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}}
}

// Hard-link chains across layers, partly deleted by later layers, and
// opaque directories: the link counts and contents are what is left.
func TestLayers(t *testing.T) {
	b := buildImage(t, Params{Time: 1700000000},
		mkTar(t,
			reg("a/one", "chain", 0o644, 0, 0), link("a/two", "a/one"), link("b/three", "a/two"),
			reg("keep/x", "x", 0o644, 0, 0), reg("opaque/old", "old", 0o644, 0, 0),
			reg("replaced", "first", 0o644, 0, 0), link("replaced-link", "replaced"),
		),
		mkTar(t,
			whiteout("a/.wh.one"), link("c/four", "b/three"),
			whiteout("opaque/.wh..wh..opq"), reg("opaque/new", "new", 0o644, 0, 0),
			reg("replaced", "second", 0o644, 0, 0),
			whiteout("keep/.wh.x"), reg("keep/x", "x again", 0o600, 0, 0),
		),
		mkTar(t, whiteout("b/.wh.three"), link("d/five", "c/four")),
	)
	for p, re := range map[string]string{
		"/a/two":         `Links: 3\b`,
		"/c/four":        `Links: 3\b`,
		"/d/five":        `Links: 3\b`,
		"/replaced":      `Size: 6\b(.|\n)*Links: 1\b`,
		"/replaced-link": `Size: 5\b(.|\n)*Links: 1\b`,
		"/keep/x":        `Mode:\s+0600(.|\n)*Size: 7\b`,
		"/opaque/new":    `Size: 3\b`,
	} {
		wantMatch(t, "stat "+p, debugfs(t, b.img, `stat "`+p+`"`), re)
	}
	for _, gone := range []string{"/a/one", "/b/three", "/opaque/old"} {
		if out, err := exec.Command(disktestTool(t, "debugfs"), "-R", `stat "`+gone+`"`, b.img).CombinedOutput(); err != nil || !strings.Contains(string(out), "File not found") {
			t.Errorf("%s is in the image: %s", gone, out)
		}
	}
	if got := debugfs(t, b.img, "cat /d/five"); got != "chain" {
		t.Errorf("/d/five = %q", got)
	}
	checkMount(t, b)
}

func disktestTool(t testing.TB, name string) string {
	return e2fstest.Tool(t, name)
}

// manyFiles is a tar of n small files in directories of 1000.
func manyFiles(t testing.TB, n int) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mt := time.Unix(1700000000, 0)
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("d%03d/", i/1000), Mode: 0o755, ModTime: mt})
		}
		body := fmt.Sprintf("file %d\n", i)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("d%03d/f%06d", i/1000, i), Mode: 0o644, Size: int64(len(body)), ModTime: mt})
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

// 100,000 small files (10,000 with -short).
func TestManyFiles(t *testing.T) {
	n := 100000
	if testing.Short() {
		n = 10000
	}
	b := buildImage(t, Params{Time: 1700000000}, manyFiles(t, n))
	wantMatch(t, "stat", debugfs(t, b.img, fmt.Sprintf(`stat "/d%03d/f%06d"`, (n-1)/1000, n-1)), `Size: \d+\b`)
	checkMount(t, b)
}

// One directory of 50,000 entries, indexed with two levels.
func TestLargeDirectory(t *testing.T) {
	var ents []ent
	for i := 0; i < 50000; i++ {
		ents = append(ents, reg(fmt.Sprintf("big/entry-with-a-name-long-enough-to-need-two-index-levels-%05d", i), "", 0o644, 0, 0))
	}
	b := buildImage(t, Params{Time: 1700000000}, mkTar(t, ents...))
	wantMatch(t, "stat", debugfs(t, b.img, `stat "/big/entry-with-a-name-long-enough-to-need-two-index-levels-49999"`), `Size: 0\b`)
	wantMatch(t, "stat /big", debugfs(t, b.img, `stat "/big"`), `Flags: 0x81000\b`) // extents, indexed
	if h := debugfs(t, b.img, `htree "/big"`); !strings.Contains(h, "Indirect levels: 1\n") {
		t.Errorf("htree /big: want two index levels; it starts %q", h[:min(len(h), 300)])
	}
	checkMount(t, b)
}

// A 4 GiB sparse file takes one block, and deep trees work.
func TestSparseAndDeep(t *testing.T) {
	deep := strings.Repeat("d/", 300) + "bottom"
	b := buildImage(t, Params{Time: 1700000000},
		disktest.SparseTar(t, "sparse", 4<<30),
		mkTar(t, reg(deep, "deep", 0o644, 0, 0)),
	)
	st := debugfs(t, b.img, `stat "/sparse"`)
	wantMatch(t, "stat /sparse", st, `Size: 4294967296\b(.|\n)*Blockcount: 8\b`)
	if got := debugfs(t, b.img, `cat "/`+deep+`"`); got != "deep" {
		t.Errorf("%s = %q", deep, got)
	}
	fi, err := os.Stat(b.img)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() >= 4<<30 {
		t.Errorf("image of %d bytes holds a 4 GiB hole", fi.Size())
	}
	checkMount(t, b)
}

// A file that a later layer deletes gives its blocks to the files that
// follow; what none of them takes is zeroed, so the deleted data is not
// left in the image.
func TestDeletedFileBlocksReused(t *testing.T) {
	fill := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	b := buildImage(t, Params{Time: 1700000000},
		mkTar(t, reg("a", fill('a', 1<<20), 0o644, 0, 0), reg("b", fill('b', 64<<10), 0o644, 0, 0)),
		mkTar(t, whiteout(".wh.a"), reg("c", fill('c', 512<<10), 0o644, 0, 0)),
	)
	for p, want := range map[string]string{"/b": fill('b', 64<<10), "/c": fill('c', 512<<10)} {
		if got := debugfs(t, b.img, "cat "+p); got != want {
			t.Errorf("cat %s: %d bytes, not the file's %d", p, len(got), len(want))
		}
	}
	bmap := func(p string) int {
		var blk int
		fmt.Sscan(debugfs(t, b.img, "bmap "+p+" 0"), &blk)
		return blk
	}
	if c, bb := bmap("/c"), bmap("/b"); c == 0 || c > bb {
		t.Errorf("/c starts at block %d, /b at %d: /c did not take the blocks of /a, before /b", c, bb)
	}
	img, err := os.ReadFile(b.img)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(img, []byte(fill('a', BlockSize))) {
		t.Error("the deleted /a's data is still in the image")
	}
}
