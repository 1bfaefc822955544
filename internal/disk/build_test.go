package disk

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/rootfs"
)

func needTools(t *testing.T) {
	t.Helper()
	disktest.NeedTools(t, "dumpe2fs")
}

func fsck(t *testing.T, img string) {
	t.Helper()
	p, _ := ext4img.Tool("e2fsck")
	if out, err := exec.Command(p, "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

func cat(t *testing.T, img, path string) string {
	t.Helper()
	b, err := ext4img.ReadFile(context.Background(), img, path)
	if err != nil {
		t.Fatalf("reading %s from %s: %v", path, img, err)
	}
	return string(b)
}

// stat returns debugfs's "stat" of path: owner, mode, type, times.
func stat(t *testing.T, img, path string) string {
	t.Helper()
	b, err := ext4img.Debugfs(context.Background(), img, `stat "`+path+`"`)
	if err != nil {
		t.Fatalf("stat %s in %s: %v", path, img, err)
	}
	return string(b)
}

func wantMatch(t *testing.T, what, s, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(s) {
		t.Errorf("%s: %q does not match %q", what, s, re)
	}
}

func dumpe2fs(t *testing.T, img string) string {
	t.Helper()
	p, _ := ext4img.Tool("dumpe2fs")
	out, err := exec.Command(p, "-h", img).Output()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v", img, err)
	}
	return string(out)
}

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func build(t *testing.T, o Options) *Report {
	t.Helper()
	if o.Free == 0 {
		o.Free = 8 << 20
	}
	rep, err := Build(context.Background(), o)
	if err != nil {
		t.Fatalf("Build(%v): %v", o.Source, err)
	}
	return rep
}

func mkTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range map[string]string{"etc/hostname": "box\n", "bin/app": "#!/bin/sh\necho hi\n", "usr/share/doc/a/b/c/deep": "deep"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "bin/app"), 0o755)
	if err := os.Symlink("../etc/hostname", filepath.Join(root, "bin/hn")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := os.WriteFile(filepath.Join(root, "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}

type tarEnt struct {
	hdr  tar.Header
	body string
}

func mkTar(t *testing.T, gz bool, ents ...tarEnt) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.Writer = &b
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&b)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range ents {
		h := e.hdr
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return b.Bytes()
}

func sampleTar(t *testing.T, gz bool) []byte {
	return mkTar(t, gz,
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./etc/", Mode: 0o755}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./etc/hostname", Mode: 0o644}, body: "box\n"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./etc/shadow", Mode: 0o640, Gid: 42}, body: "root:*:1::::::\n"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./home/user/", Mode: 0o700, Uid: 1000, Gid: 1000}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./home/user/notes", Mode: 0o600, Uid: 1000, Gid: 1000}, body: "mine"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/su", Mode: 0o4755}, body: "su"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "usr/bin/su2", Linkname: "usr/bin/su"}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin", Linkname: "usr/bin", Mode: 0o777}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "/bin/through", Mode: 0o755}, body: "through"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "home/big", Mode: 0o640, Uid: 100000, Gid: 200000, ModTime: time.Unix(1<<32+5, 0)}, body: "big ids"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "lost+found/", Mode: 0o700}},
	)
}

func TestDirSource(t *testing.T) {
	needTools(t)
	out := filepath.Join(t.TempDir(), "disk.img")
	rep := build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: mkTree(t)}, Output: out, Free: 32 << 20})
	fsck(t, out)
	if got := cat(t, out, "/etc/hostname"); got != "box\n" {
		t.Errorf("/etc/hostname = %q; want %q", got, "box\n")
	}
	if got := cat(t, out, "/usr/share/doc/a/b/c/deep"); got != "deep" {
		t.Errorf("deep file = %q; want %q", got, "deep")
	}
	wantMatch(t, "stat /bin/app", stat(t, out, "/bin/app"), `Mode:\s+0755`)
	wantMatch(t, "stat /bin/hn", stat(t, out, "/bin/hn"), `Type: symlink`)
	d := dumpe2fs(t, out)
	wantMatch(t, "dumpe2fs", d, `Filesystem volume name:\s+ginit-root\n`)
	wantMatch(t, "dumpe2fs", d, `Filesystem features:.*has_journal`)
	wantMatch(t, "dumpe2fs", d, `Filesystem UUID:\s+`+rep.UUID)
	if rep.Free < 32<<20 {
		t.Errorf("Report.Free = %d; want at least --free (%d)", rep.Free, 32<<20)
	}
	fi, err := os.Stat(out)
	if err != nil || fi.Size() != rep.Size {
		t.Errorf("size of %s = %v, %v; want %d", out, fi.Size(), err, rep.Size)
	}
	// Flags: label and an explicit size and UUID.
	out2 := filepath.Join(t.TempDir(), "disk.img")
	const uuid = "01234567-89ab-cdef-0123-456789abcdef"
	build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: mkTree(t)}, Output: out2, Label: "other", Size: 40 << 20, UUID: uuid})
	fsck(t, out2)
	d = dumpe2fs(t, out2)
	wantMatch(t, "dumpe2fs", d, `Filesystem volume name:\s+other\n`)
	wantMatch(t, "dumpe2fs", d, `Filesystem UUID:\s+`+uuid)
	wantMatch(t, "dumpe2fs", d, `Block count:\s+10240\n`)
	if blkid, err := exec.LookPath("blkid"); err == nil {
		b, _ := exec.Command(blkid, "-o", "value", "-s", "LABEL", out2).Output()
		if strings.TrimSpace(string(b)) != "other" {
			t.Errorf("blkid LABEL = %q; want other", b)
		}
	}
}

func TestTarSource(t *testing.T) {
	needTools(t)
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		tarPath := filepath.Join(dir, "rootfs.tar")
		if err := os.WriteFile(tarPath, sampleTar(t, gz), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "disk.img")
		rep := build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: tarPath}, Output: out})
		fsck(t, out)
		if rep.Special != 0 {
			t.Errorf("Special = %d; want none (no device nodes, no xattrs)", rep.Special)
		}
		for p, want := range map[string]string{"/etc/hostname": "box\n", "/usr/bin/su2": "su", "/usr/bin/through": "through", "/home/user/notes": "mine"} {
			if got := cat(t, out, p); got != want {
				t.Errorf("gz=%v: %s = %q; want %q", gz, p, got, want)
			}
		}
		for p, re := range map[string]string{
			"/etc/shadow":      `User:\s+0\s+Group:\s+42\b(.|\n)*Mode:|Mode:\s+0640(.|\n)*Group:\s+42\b`,
			"/home/user":       `Mode:\s+0700(.|\n)*User:\s+1000\s+Group:\s+1000\b`,
			"/home/user/notes": `Mode:\s+0600(.|\n)*User:\s+1000\s+Group:\s+1000\b`,
			"/usr/bin/su":      `Mode:\s+04755(.|\n)*Links: 2\b`,
			"/tmp":             `Mode:\s+01777`,
			"/run/fifo":        `Type: FIFO`,
			"/bin":             `Type: symlink`,
			"/etc/hostname":    `mtime: 0x6553f100:00000000`,
			"/home/big":        `User:\s+100000\s+Group:\s+200000\b(.|\n)* mtime: 0x00000005:00000001`,
			"/lost+found":      `Inode: 11\s+Type: directory\s+Mode:\s+0700`,
		} {
			wantMatch(t, "stat "+p, stat(t, out, p), re)
		}
		wantMatch(t, "stat /etc/shadow", stat(t, out, "/etc/shadow"), `Mode:\s+0640`)
		wantMatch(t, "dumpe2fs", dumpe2fs(t, out), `Filesystem volume name:\s+ginit-root\n`)
	}
}

func TestTarStdin(t *testing.T) {
	needTools(t)
	out := filepath.Join(t.TempDir(), "disk.img")
	// tar:- streams; a bare - is found to be a flat tar by looking.
	for _, src := range []imagesrc.Source{{Kind: "tar", Path: "-"}, {Kind: "archive", Path: "-"}} {
		tmp := t.TempDir()
		build(t, Options{Source: src, Output: out, Stdin: bytes.NewReader(sampleTar(t, true)), TmpDir: tmp})
		fsck(t, out)
		if got := cat(t, out, "/etc/hostname"); got != "box\n" {
			t.Errorf("%s: /etc/hostname = %q", src, got)
		}
		if l := leftovers(t, tmp); len(l) != 0 {
			t.Errorf("%s: %s holds %v after the run", src, tmp, l)
		}
	}
}

func TestImageConfig(t *testing.T) {
	needTools(t)
	root := mkTree(t)
	out := filepath.Join(t.TempDir(), "disk.img")
	c := Config{EntrypointSet: true, Entrypoint: []string{"/bin/app"}, CmdSet: true, Cmd: []string{"--port", "80"},
		Env: []string{"MODE=prod"}, WorkingDir: "/srv", User: "1000:1000", Arch: "amd64"}
	rep := build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: root}, Output: out, Config: c})
	fsck(t, out)
	const want = `{"architecture":"amd64","config":{"Cmd":["--port","80"],"Entrypoint":["/bin/app"],"Env":["MODE=prod"],"User":"1000:1000","WorkingDir":"/srv"},"os":"linux"}`
	if got := cat(t, out, imagespec.ConfigPath); got != want || !rep.ImageJSON {
		t.Errorf("%s = %s (ImageJSON %v); want %s", imagespec.ConfigPath, got, rep.ImageJSON, want)
	}
	wantMatch(t, "stat /.ginit", stat(t, out, "/.ginit"), `Type: directory\s+Mode:\s+0755(.|\n)*User:\s+0\s+Group:\s+0\b`)
	wantMatch(t, "stat image.json", stat(t, out, imagespec.ConfigPath), `Mode:\s+0644(.|\n)*User:\s+0\s+Group:\s+0\b`)
	if entries, _ := os.ReadDir(root); len(entries) != 4 {
		t.Errorf("the source directory changed: %v", entries)
	}

	// A document in the source is kept byte for byte without flags...
	own := "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"/bin/sh\"],\"StopSignal\":\"SIGINT\"}}\n"
	os.MkdirAll(filepath.Join(root, ".ginit"), 0o755)
	os.WriteFile(filepath.Join(root, ".ginit/image.json"), []byte(own), 0o644)
	build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: root}, Output: out})
	if got := cat(t, out, imagespec.ConfigPath); got != own {
		t.Errorf("kept %s = %q; want %q", imagespec.ConfigPath, got, own)
	}
	// ...and updated field by field with them.
	build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: root}, Output: out, Config: Config{Env: []string{"A=1"}, Arch: "arm64"}})
	fsck(t, out)
	const merged = `{"architecture":"amd64","config":{"Cmd":["/bin/sh"],"Env":["A=1"],"StopSignal":"SIGINT"},"os":"linux"}`
	if got := cat(t, out, imagespec.ConfigPath); got != merged {
		t.Errorf("merged %s = %s; want %s", imagespec.ConfigPath, got, merged)
	}
}

func TestReproducible(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar.gz")
	os.WriteFile(tarPath, sampleTar(t, true), 0o644)
	c := Config{CmdSet: true, Cmd: []string{"sh"}, Arch: "amd64"}
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: tarPath}, Output: a, Config: c})
	time.Sleep(1100 * time.Millisecond) // staged files get a later ctime
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: tarPath}, Output: b, Config: c})
	if sum(t, a) != sum(t, b) {
		t.Errorf("two runs on %s differ", tarPath)
	}

	// A directory whose ctimes and atimes move between runs.
	root := mkTree(t)
	build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: root}, Output: a})
	time.Sleep(1100 * time.Millisecond)
	os.Chmod(filepath.Join(root, "etc/hostname"), 0o644) // new ctime
	os.ReadFile(filepath.Join(root, "big"))              // maybe a new atime
	build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: root}, Output: b})
	if sum(t, a) != sum(t, b) {
		t.Errorf("two runs on %s differ", root)
	}
	// Different content, different UUID.
	os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("other\n"), 0o644)
	rb := build(t, Options{Source: imagesrc.Source{Kind: "dir", Path: root}, Output: b})
	ra, _ := ext4img.ReadSuperblock(a)
	if ext4img.FormatUUID(ra.UUID) == rb.UUID {
		t.Errorf("different content, same UUID %s", rb.UUID)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	os.WriteFile(tarPath, mkTar(t, false,
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "new", Mode: 0o644, ModTime: time.Unix(2000, 0)}, body: "n"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "old", Mode: 0o644, ModTime: time.Unix(500, 0)}, body: "o"},
	), 0o644)
	out := filepath.Join(dir, "disk.img")
	t.Setenv("SOURCE_DATE_EPOCH", "1000")
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: tarPath}, Output: out})
	fsck(t, out)
	wantMatch(t, "stat /new", stat(t, out, "/new"), ` mtime: 0x000003e8:00000000`)
	wantMatch(t, "stat /old", stat(t, out, "/old"), ` ctime: 0x000001f4:00000000(.|\n)* atime: 0x000001f4(.|\n)* mtime: 0x000001f4(.|\n)*crtime: 0x000003e8`)
	wantMatch(t, "stat /", stat(t, out, "/"), ` mtime: 0x000003e8:00000000`)
	wantMatch(t, "dumpe2fs", dumpe2fs(t, out), `Filesystem created:\s+Thu Jan  1 00:16:40 1970`)

	t.Setenv("SOURCE_DATE_EPOCH", "0")
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: tarPath}, Output: out, Config: Config{User: "1", Arch: "amd64"}})
	fsck(t, out)
	d := dumpe2fs(t, out)
	if strings.Contains(d, "Filesystem created:") {
		t.Errorf("dumpe2fs shows a creation time; want none (0)")
	}
	wantMatch(t, "dumpe2fs", d, `Last checked:\s+Thu Jan  1 00:00:00 1970`)
	wantMatch(t, "dumpe2fs", d, `Last write time:\s+Thu Jan  1 00:00:00 1970`)
	for _, p := range []string{"/", "/lost+found", "/new", "/.ginit", imagespec.ConfigPath} {
		wantMatch(t, "stat "+p, stat(t, out, p), ` ctime: 0x00000000:00000000 .*\n atime: 0x00000000:00000000 .*\n mtime: 0x00000000:00000000 .*\ncrtime: 0x00000000:00000000 `)
	}
}

// leftovers lists the files in dir other than keep.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !contains(keep, e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestFailedRunLeavesNothing(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	tmp := t.TempDir()
	out := filepath.Join(dir, "disk.img")
	evil := mkTar(t, false,
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "ok", Mode: 0o644}, body: "ok"},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "../escape", Mode: 0o644}, body: "x"},
	)
	_, err := Build(context.Background(), Options{Source: imagesrc.Source{Kind: "tar", Path: "-"}, Stdin: bytes.NewReader(evil), Output: out, TmpDir: tmp})
	if !errors.Is(err, rootfs.ErrDotDot) || !strings.Contains(err.Error(), `"../escape"`) {
		t.Errorf("Build(evil tar) = %v; want ErrDotDot naming ../escape", err)
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Errorf("after a failed run %s holds %v; want nothing", dir, l)
	}
	if l := leftovers(t, tmp); len(l) != 0 {
		t.Errorf("after a failed run the staging parent holds %v; want nothing", l)
	}

	// A failure after mkfs: the temporary image goes, an older output stays.
	os.WriteFile(out, []byte("old"), 0o644)
	testHookBeforeRename = func(string) error { return errors.New("injected") }
	defer func() { testHookBeforeRename = nil }()
	_, err = Build(context.Background(), Options{Source: imagesrc.Source{Kind: "dir", Path: mkTree(t)}, Output: out, Free: 1 << 20})
	if err == nil || err.Error() != "injected" {
		t.Errorf("Build = %v; want the injected error", err)
	}
	if l := leftovers(t, dir, "disk.img"); len(l) != 0 {
		t.Errorf("after a failed run %s holds %v; want disk.img only", dir, l)
	}
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Errorf("the previous output changed to %d bytes", len(b))
	}

	// Too small a --size fails before anything is written.
	_, err = Build(context.Background(), Options{Source: imagesrc.Source{Kind: "dir", Path: mkTree(t)}, Output: out, Size: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "below the minimum") {
		t.Errorf("Build(--size 1M) = %v; want a size error", err)
	}
}

func TestOutputRefused(t *testing.T) {
	for _, out := range []string{t.TempDir(), "/dev/null"} {
		_, err := Build(context.Background(), Options{Source: imagesrc.Source{Kind: "dir", Path: t.TempDir()}, Output: out})
		if err == nil || !strings.Contains(err.Error(), out) {
			t.Errorf("Build(output %s) = %v; want a refusal naming it", out, err)
		}
	}
}

// Device nodes and security.* xattrs come through whoever runs the build:
// the staging tree holds placeholders, debugfs makes the real thing.
func TestDevicesAndXattrs(t *testing.T) {
	needTools(t)
	out := filepath.Join(t.TempDir(), "disk.img")
	tb := mkTar(t, false,
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/vda", Mode: 0o660, Gid: 6, Devmajor: 254, Devminor: 0}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/big", Mode: 0o600, Devmajor: 300, Devminor: 70000}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "dev/vda-again", Linkname: "dev/vda"}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/ping", Mode: 0o4755, Uid: 0,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
				"SCHILY.xattr.user.comment": strings.Repeat("long value ", 30)}}, body: "p"},
	)
	rep := build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: "-"}, Stdin: bytes.NewReader(tb), Output: out})
	fsck(t, out)
	if rep.Special != 4 {
		t.Errorf("Special = %d; want 4 (three device inodes, one file with xattrs)", rep.Special)
	}
	wantMatch(t, "stat /dev/null", stat(t, out, "/dev/null"), `Type: character special\s+Mode:\s+0666(.|\n)*Device major/minor number: 01:03`)
	wantMatch(t, "stat /dev/vda", stat(t, out, "/dev/vda"), `Type: block special\s+Mode:\s+0660(.|\n)*Group:\s+6\b(.|\n)*Links: 2\b(.|\n)*Device major/minor number: 254:00`)
	wantMatch(t, "stat /dev/vda-again", stat(t, out, "/dev/vda-again"), `Type: block special\s+Mode:\s+0660(.|\n)*Links: 2\b`)
	wantMatch(t, "stat /dev/big", stat(t, out, "/dev/big"), `Type: character special(.|\n)*Device major/minor number: 300:70000`)
	wantMatch(t, "stat /bin/ping", stat(t, out, "/bin/ping"), `Mode:\s+04755`)
	b, err := ext4img.Debugfs(context.Background(), out, "ea_list /bin/ping")
	if err != nil || !strings.Contains(string(b), "security.capability (20) = 01 00 00 02 00 20 00 00") || !strings.Contains(string(b), "user.comment (330)") {
		t.Errorf("ea_list /bin/ping = %q, %v; want security.capability and user.comment", b, err)
	}
	if got := cat(t, out, "/bin/ping"); got != "p" {
		t.Errorf("/bin/ping = %q; want p", got)
	}
}

// The older writer, through mkfs.ext4 -d and debugfs, stays reachable and
// makes a disk with the same files.
func TestMkfsWriter(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	os.WriteFile(tarPath, sampleTar(t, false), 0o644)
	for _, w := range []string{WriterMkfs, WriterGo} {
		out := filepath.Join(dir, w+".img")
		build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: tarPath}, Output: out, Writer: w})
		fsck(t, out)
		for p, want := range map[string]string{"/etc/hostname": "box\n", "/usr/bin/su2": "su", "/home/user/notes": "mine"} {
			if got := cat(t, out, p); got != want {
				t.Errorf("writer %s: %s = %q; want %q", w, p, got, want)
			}
		}
		wantMatch(t, w+": stat /home/big", stat(t, out, "/home/big"), `User:\s+100000\s+Group:\s+200000\b`)
	}
	if _, err := Build(context.Background(), Options{Source: imagesrc.Source{Kind: "tar", Path: tarPath}, Output: filepath.Join(dir, "x.img"), Writer: "cp"}); err == nil || !strings.Contains(err.Error(), `"cp"`) {
		t.Errorf("Build(writer cp) = %v; want an error naming it", err)
	}
}

// A disk has the mount points a container's root has, made where the image
// has no such name and left as the image has them where it does, so that
// ginit need not make them on the disk at boot.
func TestMountPoints(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	scratch := filepath.Join(dir, "scratch.tar")
	os.WriteFile(scratch, mkTar(t, false,
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "app", Mode: 0o755}, body: "app"},
	), 0o644)
	out := filepath.Join(dir, "scratch.img")
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: scratch}, Output: out})
	fsck(t, out)
	for _, d := range imagespec.MountDirs {
		wantMatch(t, "stat /"+d.Name, stat(t, out, "/"+d.Name), fmt.Sprintf(`Type: directory\s+Mode:\s+0%o\b(.|\n)*User:\s+0\s+Group:\s+0\b`, d.Perm))
	}
	for _, name := range imagespec.EtcFiles {
		wantMatch(t, "stat /etc/"+name, stat(t, out, "/etc/"+name), `Type: regular\s+Mode:\s+0644\b(.|\n)*User:\s+0\s+Group:\s+0\s+Project:\s+\d+\s+Size: 0\n`)
	}

	// The sample has its own /etc/hostname and /tmp, and a /run with a
	// file in it; an image's /etc that is a symlink gets nothing in it.
	sample := filepath.Join(dir, "sample.tar")
	os.WriteFile(sample, sampleTar(t, false), 0o644)
	out = filepath.Join(dir, "sample.img")
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: sample}, Output: out})
	if got := cat(t, out, "/etc/hostname"); got != "box\n" {
		t.Errorf("/etc/hostname = %q; want the image's %q", got, "box\n")
	}
	wantMatch(t, "stat /run/fifo", stat(t, out, "/run/fifo"), `Type: FIFO`)
	wantMatch(t, "stat /etc/hosts", stat(t, out, "/etc/hosts"), `Type: regular\s+Mode:\s+0644\b`)

	linked := filepath.Join(dir, "linked.tar")
	os.WriteFile(linked, mkTar(t, false,
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "private/etc/", Mode: 0o755}},
		tarEnt{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "etc", Linkname: "private/etc", Mode: 0o777}},
	), 0o644)
	out = filepath.Join(dir, "linked.img")
	build(t, Options{Source: imagesrc.Source{Kind: "tar", Path: linked}, Output: out})
	fsck(t, out)
	wantMatch(t, "stat /etc", stat(t, out, "/etc"), `Type: symlink`)
	if b, err := ext4img.ReadFile(context.Background(), out, "/private/etc/hosts"); err == nil {
		t.Errorf("/private/etc/hosts = %q; want none: a symlinked /etc is the image's", b)
	}
}
