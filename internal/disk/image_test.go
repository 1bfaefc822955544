package disk

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/rootfs"
)

func rawConfig(t *testing.T, img v1.Image) []byte {
	t.Helper()
	b, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An image pulled from a registry on loopback comes out flattened, with
// every file, owner, mode, node, link and xattr, and its config byte for
// byte.
func TestImageFromRegistry(t *testing.T) {
	disktest.NeedTools(t)
	img := disktest.FeatureImage(t)
	ref := disktest.Push(t, disktest.Registry(t, nil), "feature:v1", img)
	out := filepath.Join(t.TempDir(), "disk.img")
	rep := build(t, Options{Source: imagesrc.Source{Kind: imagesrc.KindDocker, Path: ref}, Output: out})
	disktest.CheckFeatureDisk(t, out, rawConfig(t, img))
	d, _ := img.Digest()
	if rep.Image != d.String() || rep.Layers != 3 || !rep.ImageJSON {
		t.Errorf("Report = image %s, %d layers, ImageJSON %v; want %s, 3, true", rep.Image, rep.Layers, rep.ImageJSON, d)
	}
	// Times come from the image: its creation time stamps the file system.
	wantMatch(t, "dumpe2fs", dumpe2fs(t, out), `Filesystem created:\s+Tue Jan  2 03:04:05 2024`)
	wantMatch(t, "stat /", stat(t, out, "/"), `crtime: 0x65937d25:00000000`)
}

// One image from every kind of source makes the same disk, byte for byte,
// and so does a second run.
func TestImageSourcesAgree(t *testing.T) {
	disktest.NeedTools(t)
	img := disktest.FeatureImage(t)
	dir := t.TempDir()
	ref := disktest.Push(t, disktest.Registry(t, nil), "feature:v1", img)

	layout := filepath.Join(dir, "layout")
	if err := ociimage.WriteLayout(layout, img, "v1"); err != nil {
		t.Fatal(err)
	}
	ociTar := filepath.Join(dir, "oci.tar")
	tarDir(t, layout, ociTar)
	dockerTar := filepath.Join(dir, "docker.tar")
	tag, _ := name.NewTag("example.org/feature:v1")
	if err := tarball.WriteToFile(dockerTar, tag, img); err != nil {
		t.Fatal(err)
	}
	dockerBytes, _ := os.ReadFile(dockerTar)
	var dockerGz bytes.Buffer
	zw := gzip.NewWriter(&dockerGz)
	zw.Write(dockerBytes)
	zw.Close()

	var first [32]byte
	for i, tc := range []struct {
		src   imagesrc.Source
		stdin []byte
	}{
		{imagesrc.Source{Kind: imagesrc.KindDocker, Path: ref}, nil},
		{imagesrc.Source{Kind: imagesrc.KindDocker, Path: ref}, nil},
		{imagesrc.Source{Kind: imagesrc.KindOCI, Path: layout}, nil},
		{imagesrc.Source{Kind: imagesrc.KindOCI, Path: layout + ":v1"}, nil},
		{imagesrc.Source{Kind: imagesrc.KindOCIArchive, Path: ociTar}, nil},
		{imagesrc.Source{Kind: imagesrc.KindArchive, Path: ociTar}, nil},
		{imagesrc.Source{Kind: imagesrc.KindDockerArchive, Path: dockerTar}, nil},
		{imagesrc.Source{Kind: imagesrc.KindDockerArchive, Path: dockerTar + ":example.org/feature:v1"}, nil},
		{imagesrc.Source{Kind: imagesrc.KindDockerArchive, Path: "-"}, dockerBytes},
		{imagesrc.Source{Kind: imagesrc.KindArchive, Path: "-"}, dockerGz.Bytes()},
		{imagesrc.Source{Kind: imagesrc.KindOCIArchive, Path: "-"}, mustRead(t, ociTar)},
	} {
		out := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		o := Options{Source: tc.src, Output: out, TmpDir: t.TempDir()}
		if tc.stdin != nil {
			o.Stdin = bytes.NewReader(tc.stdin)
		}
		build(t, o)
		got := sum(t, out)
		if i == 0 {
			first = got
			disktest.CheckFeatureDisk(t, out, rawConfig(t, img))
			continue
		}
		if got != first {
			t.Errorf("%s: disk sha256 %x; want %x, as from %s", tc.src, got, first, ref)
		}
		if l := leftovers(t, o.TmpDir); len(l) != 0 {
			t.Errorf("%s: temporary directory holds %v after the run", tc.src, l)
		}
	}
	t.Logf("all sources: disk sha256 %x", first)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarDir packs dir into the tar file out, as oci-archive files are.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ociimage.TarDir(f, dir, ociimage.TarOptions{}); err != nil {
		t.Fatal(err)
	}
}

// The image flags change the image's config field by field.
func TestImageConfigFlags(t *testing.T) {
	disktest.NeedTools(t)
	img := disktest.FeatureImage(t)
	layout := filepath.Join(t.TempDir(), "layout")
	if err := ociimage.WriteLayout(layout, img, ""); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "disk.img")
	build(t, Options{Source: imagesrc.Source{Kind: imagesrc.KindOCI, Path: layout}, Output: out, Config: Config{CmdSet: true, Cmd: []string{"--other"}, Env: []string{"A=2", "B=3"}}})
	got := cat(t, out, imagespec.ConfigPath)
	for _, want := range []string{`"Entrypoint":["/bin/app"]`, `"Cmd":["--other"]`, `"Env":["PATH=/usr/bin:/bin","A=2","B=3"]`, `"User":"1000:1000"`, `"StopSignal":"SIGINT"`, `"rootfs":{`, `"created":"2024-01-02T03:04:05Z"`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s = %s; want it to hold %s", imagespec.ConfigPath, got, want)
		}
	}
}

// A multi-platform index gives the image for the platform asked for.
func TestImagePlatform(t *testing.T) {
	disktest.NeedTools(t)
	mk := func(arch, body string) v1.Image {
		img, err := ociimage.NewImage([]tarball.Opener{disktest.Opener(disktest.Tar(t, disktest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "arch"}, Body: body}))},
			ociimage.Spec{Platform: v1.Platform{OS: "linux", Architecture: arch}})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: mk("amd64", "x86"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: mk("arm64", "arm"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	host := disktest.Registry(t, nil)
	r, _ := name.ParseReference(host + "/multi:1")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	if err := ociimage.WriteLayoutIndex(layout, idx); err != nil {
		t.Fatal(err)
	}
	for _, src := range []imagesrc.Source{{Kind: imagesrc.KindDocker, Path: r.String()}, {Kind: imagesrc.KindOCI, Path: layout}} {
		for plat, want := range map[string]string{"": "x86", "linux/amd64": "x86", "linux/arm64": "arm"} {
			o := Options{Source: src, Output: filepath.Join(t.TempDir(), "disk.img")}
			if plat != "" {
				o.Platform, _ = v1.ParsePlatform(plat)
			}
			build(t, o)
			if got := cat(t, o.Output, "/arch"); got != want {
				t.Errorf("%s --platform %q: /arch = %q; want %q", src, plat, got, want)
			}
		}
		o := Options{Source: src, Output: filepath.Join(t.TempDir(), "disk.img"), Platform: &v1.Platform{OS: "linux", Architecture: "riscv64"}}
		if _, err := Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "riscv64") {
			t.Errorf("%s --platform linux/riscv64 = %v; want an error naming the platform", src, err)
		}
	}
}

// rawLayer is a layer whose blob is given as is, with the diff_id it
// claims: hostile producers can write anything.
type rawLayer struct {
	blob   []byte
	diffID v1.Hash
	mt     types.MediaType
}

func (l rawLayer) Digest() (v1.Hash, error) {
	s := sha256.Sum256(l.blob)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}, nil
}
func (l rawLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l rawLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l rawLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("not for hostile layers")
}
func (l rawLayer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l rawLayer) MediaType() (types.MediaType, error) { return l.mt, nil }

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// hostileImage builds an image of plain tar layers, each with its true
// diff_id unless wrongDiffID.
func hostileImage(t *testing.T, wrongDiffID bool, layers ...[]byte) v1.Image {
	t.Helper()
	var ls []v1.Layer
	for _, l := range layers {
		d := sha(l)
		if wrongDiffID {
			d = sha(append(l, 0))
		}
		ls = append(ls, rawLayer{blob: l, diffID: d, mt: types.OCIUncompressedLayer})
	}
	img, err := ociimage.FromLayers(ls, ociimage.Spec{Config: v1.Config{Cmd: []string{"/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func ent(typ byte, name, target, body string) disktest.Entry {
	return disktest.Entry{Header: tar.Header{Typeflag: typ, Name: name, Linkname: target}, Body: body}
}

// Hostile layers are refused, each with its own error, and nothing is
// written outside the staging tree, nor any output left.
func TestHostileLayers(t *testing.T) {
	disktest.NeedTools(t)
	good := disktest.Tar(t, ent(tar.TypeReg, "ok", "", "ok"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(disktest.Tar(t, ent(tar.TypeReg, "big", "", strings.Repeat("x", 100000))))
	zw.Close()
	truncated := gz.Bytes()[:gz.Len()/2]
	var corruptDigest v1.Hash

	type tc struct {
		name string
		img  v1.Image
		want error
		text string
	}
	cases := []tc{
		{"dotdot", hostileImage(t, false, good, disktest.Tar(t, ent(tar.TypeReg, "a/../../../outside/pwned", "", "x"))),
			rootfs.ErrDotDot, `layer 2 (sha256:`},
		{"absolute name", hostileImage(t, false, disktest.Tar(t, ent(tar.TypeReg, "/etc/passwd", "", "x"))),
			rootfs.ErrAbsolute, `"/etc/passwd"`},
		{"symlink then write through it", hostileImage(t, false,
			disktest.Tar(t, ent(tar.TypeSymlink, "evil", "../../outside", "")),
			disktest.Tar(t, ent(tar.TypeReg, "evil/pwned", "", "x"))),
			rootfs.ErrSymlinkEscape, `"evil/pwned"`},
		{"hard link to outside", hostileImage(t, false, disktest.Tar(t, ent(tar.TypeLink, "h", "../../outside/secret", ""))),
			rootfs.ErrHardlinkEscape, `"h"`},
		{"hard link through a symlink", hostileImage(t, false,
			disktest.Tar(t, ent(tar.TypeSymlink, "s", "../../outside", "")),
			disktest.Tar(t, ent(tar.TypeLink, "h", "s/secret", ""))),
			rootfs.ErrHardlinkEscape, `"h"`},
		{"huge sparse file", hostileImage(t, false, disktest.SparseTar(t, "huge", 1<<40)),
			rootfs.ErrTooLarge, `"huge"`},
		{"truncated layer", func() v1.Image {
			img, err := ociimage.FromLayers([]v1.Layer{rawLayer{blob: truncated, diffID: sha([]byte("whatever")), mt: types.OCILayer}}, ociimage.Spec{})
			if err != nil {
				t.Fatal(err)
			}
			return img
		}(), io.ErrUnexpectedEOF, "truncated"},
		{"wrong diff_id", hostileImage(t, true, good), ociimage.ErrDigest, "diff_id"},
		{"wrong digest", func() v1.Image {
			img := hostileImage(t, false, disktest.Tar(t, ent(tar.TypeReg, "f", "", "served wrong")))
			ls, _ := img.Layers()
			corruptDigest, _ = ls[0].Digest()
			return img
		}(), ociimage.ErrDigest, "sha256"},
	}
	// The registry serves the blob of corruptDigest with one byte changed.
	host := disktest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || corruptDigest.Hex == "" || !strings.HasSuffix(r.URL.Path, "/blobs/"+corruptDigest.String()) {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			b[515] ^= 1 // in the file's content, after its 512-byte header
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(b)
		})
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := disktest.Push(t, host, "hostile:"+strings.ReplaceAll(c.name, " ", "-"), c.img)
			sandbox := t.TempDir()
			tmp, outside, outDir := filepath.Join(sandbox, "tmp"), filepath.Join(sandbox, "outside"), filepath.Join(sandbox, "out")
			for _, d := range []string{tmp, outside, outDir} {
				os.Mkdir(d, 0o755)
			}
			os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
			out := filepath.Join(outDir, "disk.img")
			_, err := Build(context.Background(), Options{Source: imagesrc.Source{Kind: imagesrc.KindDocker, Path: ref}, Output: out, TmpDir: tmp, MaxLayerSize: 1 << 30})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Errorf("Build(%s) = %v; want %v, naming %s", c.name, err, c.want, c.text)
			} else {
				t.Logf("refused: %v", err)
			}
			for d, keep := range map[string][]string{tmp: nil, outDir: nil, outside: {"secret"}} {
				if l := leftovers(t, d, keep...); len(l) != 0 {
					t.Errorf("after the run %s holds %v", d, l)
				}
			}
			if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "secret" {
				t.Errorf("outside/secret = %q", b)
			}
		})
	}
}
