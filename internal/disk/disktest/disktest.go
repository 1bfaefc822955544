// Package disktest holds what the tests of oci2disk share: images built in
// the test that exercise every part of layer flattening, hostile layers,
// an in-process registry on loopback, and the checks of a finished disk
// with e2fsck and debugfs.
package disktest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/ociimage"
)

// Entry is one tar entry; Body is a regular file's content.
type Entry struct {
	tar.Header
	Body string
}

// Mtime is the mtime of entries that give none.
var Mtime = time.Unix(1700000000, 0)

// Tar writes the entries as an uncompressed tar.
func Tar(t testing.TB, ents ...Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := e.Header
		if h.ModTime.IsZero() {
			h.ModTime = Mtime
		}
		if h.Mode == 0 && h.Typeflag != tar.TypeSymlink && h.Typeflag != tar.TypeLink {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar entry %s: %v", h.Name, err)
		}
		io.WriteString(tw, e.Body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Opener serves b as a layer tar.
func Opener(b []byte) tarball.Opener {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func dir(n string, mode int64, uid, gid int) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: mode, Uid: uid, Gid: gid}}
}

func file(n, body string, mode int64, uid, gid int) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Uid: uid, Gid: gid}, Body: body}
}

func link(n, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeLink, Name: n, Linkname: target}}
}

// Capability is a security.capability value granting cap_net_raw.
const Capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// FeatureConfig is the config of FeatureImage.
var FeatureConfig = v1.Config{
	Entrypoint:   []string{"/bin/app"},
	Cmd:          []string{"--flag", "two words"},
	Env:          []string{"PATH=/usr/bin:/bin", "A=1"},
	WorkingDir:   "/srv",
	User:         "1000:1000",
	StopSignal:   "SIGINT",
	ExposedPorts: map[string]struct{}{"8080/tcp": {}},
	Labels:       map[string]string{"org.example.role": "test"},
}

// FeatureCreated is FeatureImage's creation time.
var FeatureCreated = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// FeatureLayers are three layers that exercise flattening: ownership,
// modes with setuid, setgid and sticky bits, device nodes, a fifo, xattrs,
// symlinks, hard links within and across layers, whiteouts, an opaque
// directory, parents a layer omits, ids above 65535 and mtimes past 2038.
func FeatureLayers(t testing.TB) [][]byte {
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	l1 := Tar(t,
		dir("etc/", 0o755, 0, 0),
		file("etc/hostname", "box\n", 0o644, 0, 0),
		file("etc/shadow", "root:*:1::::::\n", 0o640, 0, 42),
		file("etc/old", "old", 0o644, 0, 0),
		dir("etc/dir-gone/", 0o755, 0, 0),
		file("etc/dir-gone/f", "f", 0o644, 0, 0),
		dir("usr/", 0o755, 0, 0),
		dir("usr/bin/", 0o755, 0, 0),
		file("usr/bin/su", "su", 0o4755, 0, 0),
		file("usr/bin/wall", "wall", 0o2755, 0, 5),
		Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "usr/bin/ping", Mode: 0o755,
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": Capability, "SCHILY.xattr.user.note": "pinger"}}, Body: "ping"},
		Entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin", Linkname: "usr/bin"}},
		dir("tmp/", 0o1777, 0, 0),
		dir("home/", 0o755, 0, 0),
		dir("home/user/", 0o700, 1000, 1000),
		dir("dev/", 0o755, 0, 0),
		Entry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		Entry{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Gid: 6, Devmajor: 8}},
		Entry{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}}, // run/ omitted
		dir("opq/", 0o755, 0, 0),
		file("opq/lower", "lower", 0o644, 0, 0),
		dir("opq/sub/", 0o755, 0, 0),
		file("opq/sub/lower", "lower", 0o644, 0, 0),
		dir("data/", 0o755, 0, 0),
		file("data/orig", "shared", 0o600, 33, 33),
		link("data/same-layer", "data/orig"),
		file("usr/share/big", big, 0o644, 0, 0),
	)
	l2 := Tar(t,
		file("etc/.wh.old", "", 0o644, 0, 0),
		file("etc/.wh.dir-gone", "", 0o644, 0, 0),
		file("etc/hostname", "changed\n", 0o644, 0, 0),
		dir("opq/", 0o755, 0, 0),
		file("opq/.wh..wh..opq", "", 0o644, 0, 0),
		file("opq/upper", "upper", 0o644, 0, 0),
		link("data/across", "data/orig"),
		link("usr/bin/su2", "usr/bin/su"),
		file("home/user/notes", "mine", 0o600, 1000, 1000),
		file("lib/omitted/parents/file", "deep", 0o644, 0, 0),
	)
	l3 := Tar(t,
		Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "etc/motd", Mode: 0o644, ModTime: time.Unix(1<<32+5, 0)}, Body: "after 2106\n"},
		file("srv/big-ids", "ids", 0o640, 100000, 200000),
		Entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "srv/long-link", Linkname: "/" + strings.Repeat("x/", 40) + "target"}},
	)
	return [][]byte{l1, l2, l3}
}

// FeatureImage is FeatureLayers as an OCI image, its layers compressed
// with gzip, zstd and nothing.
func FeatureImage(t testing.TB) v1.Image {
	t.Helper()
	ls := FeatureLayers(t)
	var layers []v1.Layer
	for i, c := range []string{"gzip", "zstd", "none"} {
		img, err := ociimage.NewImage([]tarball.Opener{Opener(ls[i])}, ociimage.Spec{Compression: c})
		if err != nil {
			t.Fatal(err)
		}
		l, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l[0])
	}
	img, err := ociimage.FromLayers(layers, ociimage.Spec{Config: FeatureConfig, Created: FeatureCreated})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Registry serves an in-process registry on 127.0.0.1 for the test and
// returns its host:port. wrap, when not nil, wraps its handler (to corrupt
// what it serves).
func Registry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

// Push writes img to host as repo:tag and returns the reference.
func Push(t testing.TB, host, repo string, img v1.Image) string {
	t.Helper()
	ref := fmt.Sprintf("%s/%s", host, repo)
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

// SparseTar is a tar holding one PAX (GNU 1.0) sparse file of size bytes,
// almost all of it a hole: a few hundred bytes that unpack to size.
func SparseTar(t testing.TB, name string, size int64) []byte {
	t.Helper()
	rec := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", fmt.Sprint(size))
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	// archive/tar will not write GNU.sparse records: write the extended
	// header as a file and turn it into one below.
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/" + name, Size: int64(len(rec)), Mode: 0o644, Format: tar.FormatUSTAR})
	io.WriteString(tw, rec)
	sparseMap := fmt.Sprintf("1\n%d\n1\n", size-1) // one byte of data at the end
	data := append([]byte(sparseMap), make([]byte, 512-len(sparseMap))...)
	data = append(data, 'x')
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "GNUSparseFile.0/" + name, Size: int64(len(data)), Mode: 0o644, Format: tar.FormatUSTAR})
	tw.Write(data)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	raw[156] = tar.TypeXHeader
	copy(raw[148:156], "        ")
	sum := 0
	for _, c := range raw[:512] {
		sum += int(c)
	}
	copy(raw[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return raw
}

func paxRecord(k, v string) string {
	s := " " + k + "=" + v + "\n"
	n := len(s) + 1
	for len(fmt.Sprint(n))+len(s) != n {
		n = len(fmt.Sprint(n)) + len(s)
	}
	return fmt.Sprint(n) + s
}
