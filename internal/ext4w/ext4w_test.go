package ext4w

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ext4fs/e2fstest"
)

type ent struct {
	hdr  tar.Header
	body string
}

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := e.hdr
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(e.body))
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// image writes layers into a new image and checks it with e2fsck.
func image(t testing.TB, p Params, layers ...[]byte) string {
	t.Helper()
	dir := t.TempDir()
	tr := NewTree(newImageFile(t, dir, false), Options{})
	for _, l := range layers {
		if err := tr.Apply(context.Background(), bytes.NewReader(l), len(layers) > 1); err != nil {
			t.Fatal(err)
		}
	}
	if p.Free == 0 && p.Size == 0 {
		p.Free = 4 << 20
	}
	pl, err := tr.Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Write(IDs{UUID: [16]byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	img := tr.File.File().Name()
	e2fstest.Fsck(t, img)
	return img
}

// newImageFile makes dir/fs.img, closed when the test ends.
func newImageFile(t testing.TB, dir string, hash bool) *ImageFile {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "fs.img"))
	if err != nil {
		t.Fatal(err)
	}
	im := NewImageFile(f, hash)
	t.Cleanup(func() {
		im.Close()
		f.Close()
	})
	return im
}

func debugfs(t testing.TB, img, req string) string {
	t.Helper()
	out, err := exec.Command(e2fstest.Tool(t, "debugfs"), "-R", req, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v\n%s", req, err, out)
	}
	return string(out)
}

func TestSimple(t *testing.T) {
	img := image(t, Params{Label: "test", Time: 1700000000},
		mkTar(t,
			ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
			ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/hostname", Mode: 0o644}, body: "box\n"},
			ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644}, body: strings.Repeat("x", 1<<20)},
			ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin", Linkname: "usr/bin"}},
			ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "long", Linkname: strings.Repeat("a/", 100)}},
			ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
			ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600}},
			ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "etc/hn2", Linkname: "etc/hostname"}},
			ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "x", Mode: 0o644, PAXRecords: map[string]string{
				"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
				"SCHILY.xattr.user.long":           strings.Repeat("v", 300)}}, body: "x"},
		))
	t.Log(debugfs(t, img, "ls -l /"))
	if got := debugfs(t, img, "cat /etc/hn2"); got != "box\n" {
		t.Errorf("cat = %q", got)
	}
}

func wantMatch(t testing.TB, what, s, re string) {
	t.Helper()
	if !regexp.MustCompile(re).MatchString(s) {
		t.Errorf("%s: %q does not match %q", what, s[:min(len(s), 2000)], re)
	}
}

// Attributes that the inode and one block cannot hold are refused when
// the entry is read, with the entry and the largest attribute named.
func TestXattrsTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		xattrs map[string]string
		want   string // in the error; "" for none
	}{
		{"one block's worth", map[string]string{"SCHILY.xattr.user.a": strings.Repeat("v", 3000)}, ""},
		{"one value past a block", map[string]string{"SCHILY.xattr.user.huge": strings.Repeat("v", 5000)}, `"user.huge", has 5000 bytes`},
		{"several that add up", map[string]string{
			"SCHILY.xattr.user.a": strings.Repeat("a", 1500),
			"SCHILY.xattr.user.b": strings.Repeat("b", 1600),
			"SCHILY.xattr.user.c": strings.Repeat("c", 1400),
		}, `"user.b", has 1600 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer := mkTar(t, ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "dir/f", Mode: 0o644, PAXRecords: tc.xattrs}, body: "x"})
			tr := NewTree(newImageFile(t, t.TempDir(), false), Options{})
			err := tr.Apply(context.Background(), bytes.NewReader(layer), false)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Apply = %v; want nil", err)
			case tc.want != "" && (!errors.Is(err, ErrXattr) || !strings.Contains(err.Error(), `"dir/f"`) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Apply = %v; want ErrXattr naming \"dir/f\" and %s", err, tc.want)
			}
		})
	}
}
