package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type ent struct {
	typ  byte
	name string
	link string
	body string
	uid  int
	mode int64
}

func mkTar(t *testing.T, ents ...ent) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.link, Mode: e.mode, Uid: e.uid,
			ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// sandbox returns an empty staging root and a sibling directory standing
// for "outside", holding one file.
func sandbox(t *testing.T) (root, outside string) {
	base := t.TempDir()
	root, outside = filepath.Join(base, "root"), filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, outside
}

// checkOutside fails if anything but the one file is in outside, or the
// file changed, or anything appeared beside root and outside.
func checkOutside(t *testing.T, root, outside string) {
	t.Helper()
	names, _ := os.ReadDir(outside)
	if len(names) != 1 || names[0].Name() != "secret" {
		t.Errorf("outside holds %v; want only secret", names)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
		t.Errorf("outside/secret = %q; want %q", b, "secret")
	}
	if fi, err := os.Lstat(filepath.Join(outside, "secret")); err != nil || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Errorf("outside/secret gained a hard link")
	}
	sib, _ := os.ReadDir(filepath.Dir(root))
	if len(sib) != 2 {
		t.Errorf("the sandbox holds %v; want root and outside only", sib)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ents  []ent
		bad   string // entry named in the error
		want  error
		other error // a second error the chain must hold, if any
	}{
		{"dotdot", []ent{{typ: tar.TypeReg, name: "../x", body: "x"}}, "../x", ErrDotDot, nil},
		{"dotdot inside", []ent{{typ: tar.TypeReg, name: "a/../../outside/x", body: "x"}}, "a/../../outside/x", ErrDotDot, nil},
		{"dotdot dir", []ent{{typ: tar.TypeDir, name: "../outside/d/", mode: 0o755}}, "../outside/d/", ErrDotDot, nil},
		{"write through relative symlink", []ent{
			{typ: tar.TypeSymlink, name: "evil", link: "../outside"},
			{typ: tar.TypeReg, name: "evil/file", body: "x"},
		}, "evil/file", ErrSymlinkEscape, nil},
		{"write through symlink chain", []ent{
			{typ: tar.TypeDir, name: "a/", mode: 0o755},
			{typ: tar.TypeSymlink, name: "a/up", link: ".."},
			{typ: tar.TypeSymlink, name: "b", link: "a/up/a/up/../outside"},
			{typ: tar.TypeReg, name: "b/secret", body: "pwned"},
		}, "b/secret", ErrSymlinkEscape, nil},
		{"symlink overwrite through dir symlink", []ent{
			{typ: tar.TypeSymlink, name: "d", link: "/../../outside"},
			{typ: tar.TypeSymlink, name: "d/secret", link: "/etc/passwd"},
		}, "d/secret", ErrSymlinkEscape, nil},
		{"hard link dotdot", []ent{
			{typ: tar.TypeLink, name: "h", link: "../outside/secret"},
		}, "h", ErrHardlinkEscape, ErrDotDot},
		{"hard link through symlink", []ent{
			{typ: tar.TypeSymlink, name: "s", link: "../outside"},
			{typ: tar.TypeLink, name: "h", link: "s/secret"},
		}, "h", ErrHardlinkEscape, ErrSymlinkEscape},
		{"symlink loop", []ent{
			{typ: tar.TypeSymlink, name: "l", link: "l"},
			{typ: tar.TypeReg, name: "l/x", body: "x"},
		}, "l/x", ErrTooManyLinks, nil},
		{"through a file", []ent{
			{typ: tar.TypeReg, name: "f", body: "x"},
			{typ: tar.TypeReg, name: "f/x", body: "x"},
		}, "f/x", ErrNotDir, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, outside := sandbox(t)
			_, err := ExtractWith(context.Background(), mkTar(t, tc.ents...), root, Options{})
			var ee *EntryError
			if !errors.As(err, &ee) || ee.Name != tc.bad {
				t.Fatalf("Extract = %v; want an *EntryError for %q", err, tc.bad)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Extract = %v; want %v", err, tc.want)
			}
			if tc.other != nil && !errors.Is(err, tc.other) {
				t.Errorf("Extract = %v; want it to hold %v too", err, tc.other)
			}
			checkOutside(t, root, outside)
		})
	}
}

func TestExtractContains(t *testing.T) {
	root, outside := sandbox(t)
	res, err := ExtractWith(context.Background(), mkTar(t,
		ent{typ: tar.TypeReg, name: "/abs/file", body: "abs"},
		ent{typ: tar.TypeDir, name: "usr/lib/", mode: 0o755},
		ent{typ: tar.TypeSymlink, name: "lib", link: "/usr/lib"},
		ent{typ: tar.TypeReg, name: "lib/through", body: "through"},
		ent{typ: tar.TypeSymlink, name: "up", link: "../../../outside"}, // a link may point anywhere
		ent{typ: tar.TypeReg, name: "up", body: "replaced"},             // replaced, never followed
		ent{typ: tar.TypeSymlink, name: "pw", link: "/etc/passwd"},
		ent{typ: tar.TypeLink, name: "lib/hard", link: "/abs/file"},
		ent{typ: tar.TypeReg, name: "./x/./y", body: "y", uid: 1234, mode: 0o4750},
	), root, Options{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	fi, err := os.Lstat(filepath.Join(root, "x/y"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	m, ok := res.MetaFor(st.Atim.Sec)
	if !ok || m.UID != 1234 || m.Perm != 0o4750 || m.Mtime != 1700000000 {
		t.Errorf("MetaFor(atime of x/y) = %+v, %v; want uid 1234, perm 04750, mtime 1700000000", m, ok)
	}
	if st.Mtim.Sec != 1700000000 {
		t.Errorf("mtime of x/y = %d; want 1700000000", st.Mtim.Sec)
	}
	// Implicit parents get a marker too.
	fi, _ = os.Lstat(filepath.Join(root, "x"))
	if m, ok := res.MetaFor(fi.Sys().(*syscall.Stat_t).Atim.Sec); !ok || m.Perm != 0o755 || m.UID != 0 {
		t.Errorf("MetaFor(atime of x) = %+v, %v; want 0755 root", m, ok)
	}
	// Reading changes atimes: check the markers first.
	for p, want := range map[string]string{"abs/file": "abs", "usr/lib/through": "through", "up": "replaced", "usr/lib/hard": "abs", "x/y": "y"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", p, b, err, want)
		}
	}
	checkOutside(t, root, outside)
	if p, err := Resolve(root, "/lib/hard"); err != nil || p != filepath.Join(root, "usr/lib/hard") {
		t.Errorf("Resolve(/lib/hard) = %q, %v; want %q", p, err, filepath.Join(root, "usr/lib/hard"))
	}
	if p, err := Resolve(root, "/pw"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Resolve(/pw) = %q, %v; want ErrNotExist (the root has no /etc/passwd)", p, err)
	}
	if p, err := Resolve(root, "/lib/../up"); !errors.Is(err, ErrDotDot) {
		t.Errorf("Resolve(/lib/../up) = %q, %v; want ErrDotDot", p, err)
	}
}

// Device nodes and xattrs go to the side table, never onto the staged
// files: placeholders stand in for the nodes, whoever runs the extraction.
func TestExtractDevicesAndXattrs(t *testing.T) {
	root, _ := sandbox(t)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeBlock, Name: "dev/vda", Mode: 0o660, Devmajor: 254})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600})
	cap := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/ping", Mode: 0o755, Size: 1,
		PAXRecords: map[string]string{"SCHILY.xattr.security.capability": cap, "SCHILY.xattr.user.a": "1"}})
	tw.Write([]byte("p"))
	tw.Close()
	res, err := ExtractWith(context.Background(), &b, root, Options{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	meta := func(rel string) (os.FileInfo, Meta) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		m, ok := res.MetaFor(fi.Sys().(*syscall.Stat_t).Atim.Sec)
		if !ok {
			t.Fatalf("%s: no marker", rel)
		}
		return fi, m
	}
	for rel, want := range map[string]Device{"dev/null": {Major: 1, Minor: 3}, "dev/vda": {Block: true, Major: 254}} {
		fi, m := meta(rel)
		if !fi.Mode().IsRegular() || fi.Size() != 0 {
			t.Errorf("%s staged as %v; want an empty regular file", rel, fi.Mode())
		}
		if m.Dev == nil || *m.Dev != want {
			t.Errorf("%s: Meta.Dev = %+v; want %+v", rel, m.Dev, want)
		}
	}
	_, m := meta("bin/ping")
	if len(m.Xattrs) != 2 || m.Xattrs[0].Name != "security.capability" || string(m.Xattrs[0].Value) != cap || m.Xattrs[1].Name != "user.a" {
		t.Errorf("bin/ping: Meta.Xattrs = %q; want security.capability, user.a", m.Xattrs)
	}
	if n, _ := unix.Llistxattr(filepath.Join(root, "bin/ping"), make([]byte, 256)); n != 0 {
		t.Errorf("bin/ping staged with %d bytes of xattr names; want none", n)
	}
	if fi, err := os.Lstat(filepath.Join(root, "run/fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("run/fifo: %v, %v; want a fifo", fi, err)
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{"/a/b": "a/b", "./a//b/": "a/b", "./": ".", "/": ".", "a/./b": "a/b"} {
		if got, err := CleanName(in); err != nil || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../a", "a/..", "a/../b", "/../a"} {
		if _, err := CleanName(in); !errors.Is(err, ErrDotDot) {
			t.Errorf("CleanName(%q) = %v; want ErrDotDot", in, err)
		}
	}
}
