package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func layerTar(t *testing.T, name, body string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(body)), Mode: 0o644, ModTime: time.Unix(1, 0)})
	io.WriteString(tw, body)
	tw.Close()
	return b.Bytes()
}

type member struct {
	name, link string
	body       []byte
}

func writeTar(t *testing.T, p string, ms ...member) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, m := range ms {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: m.name, Size: int64(len(m.body)), Mode: 0o644}
		if m.link != "" {
			h = &tar.Header{Typeflag: tar.TypeSymlink, Name: m.name, Linkname: m.link}
		}
		tw.WriteHeader(h)
		tw.Write(m.body)
	}
	tw.Close()
	f.Close()
}

func readLayers(t *testing.T, im *Image) []string {
	t.Helper()
	var names []string
	for _, l := range im.Layers {
		lr, err := l.Open(nil)
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(lr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			names = append(names, h.Name)
		}
		if err := lr.Verify(); err != nil {
			t.Errorf("%s: Verify = %v", l, err)
		}
		lr.Close()
	}
	return names
}

// The legacy `docker save` format: layer directories, a config named by
// its digest, and a repeated layer stored once behind a symlink.
func TestLegacyDockerArchive(t *testing.T) {
	l1, l2 := layerTar(t, "a", "1"), layerTar(t, "b", "2")
	d := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Cmd": []string{"/a"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{d(l1), d(l2), d(l1)}}})
	cfgName := fmt.Sprintf("%x.json", sha256.Sum256(cfg))
	man, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"app:1"}, "Layers": []string{"x/layer.tar", "y/layer.tar", "z/layer.tar"}}})
	p := filepath.Join(t.TempDir(), "save.tar")
	writeTar(t, p, member{name: "manifest.json", body: man}, member{name: cfgName, body: cfg},
		member{name: "x/layer.tar", body: l1}, member{name: "y/layer.tar", body: l2}, member{name: "z/layer.tar", link: "../x/layer.tar"})
	if got := Sniff(p); got != DockerArchive {
		t.Errorf("Sniff = %q; want %q", got, DockerArchive)
	}
	for _, arg := range []string{p, p + ":app:1", p + ":docker.io/library/app:1"} {
		im, err := Open(context.Background(), DockerArchive, arg, Options{})
		if err != nil {
			t.Fatalf("Open(%s): %v", arg, err)
		}
		if got := strings.Join(readLayers(t, im), " "); got != "a b a" {
			t.Errorf("layers hold %q; want a b a", got)
		}
		if !bytes.Equal(im.RawConfig, cfg) {
			t.Errorf("RawConfig = %s; want %s", im.RawConfig, cfg)
		}
		im.Close()
	}
	if _, err := Open(context.Background(), DockerArchive, p+":other:1", Options{}); err == nil || !strings.Contains(err.Error(), "app:1") {
		t.Errorf("Open(other tag) = %v; want an error listing app:1", err)
	}
	// A config whose bytes do not match its name.
	bad := filepath.Join(t.TempDir(), "bad.tar")
	writeTar(t, bad, member{name: "manifest.json", body: man}, member{name: cfgName, body: append(cfg, ' ')},
		member{name: "x/layer.tar", body: l1}, member{name: "y/layer.tar", body: l2}, member{name: "z/layer.tar", link: "../x/layer.tar"})
	if _, err := Open(context.Background(), DockerArchive, bad, Options{}); err == nil || !strings.Contains(err.Error(), ErrDigest.Error()) {
		t.Errorf("Open(config not matching its name) = %v; want %v", err, ErrDigest)
	}
}

func TestLayoutNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	for _, n := range []string{"one", "two"} {
		img, err := NewImage([]tarball.Opener{func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar(t, n, n))), nil }}, Spec{Config: v1.Config{Cmd: []string{n}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteLayout(dir, img, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Open(context.Background(), OCI, dir, Options{}); err == nil || !strings.Contains(err.Error(), "one, two") {
		t.Errorf("Open(two images, no name) = %v; want an error listing one, two", err)
	}
	im, err := Open(context.Background(), OCI, dir+":two", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if got := readLayers(t, im); len(got) != 1 || got[0] != "two" {
		t.Errorf("oci:%s:two layers hold %q", dir, got)
	}
	if _, err := Open(context.Background(), OCI, dir+":three", Options{}); err == nil || !strings.Contains(err.Error(), `"three"`) {
		t.Errorf("Open(:three) = %v; want an error naming three", err)
	}
	if Sniff(dir) != OCI || Sniff(t.TempDir()) != "" {
		t.Errorf("Sniff of a layout and of an empty directory = %q, %q", Sniff(dir), Sniff(t.TempDir()))
	}
	flat := filepath.Join(t.TempDir(), "flat.tar")
	os.WriteFile(flat, layerTar(t, "etc/hostname", "x"), 0o644)
	if Sniff(flat) != "" {
		t.Errorf("Sniff(flat tar) = %q; want \"\"", Sniff(flat))
	}
	if im, err := Open(context.Background(), Archive, flat, Options{}); err != ErrFlatTar || im.Spool != flat {
		t.Errorf("Open(archive, flat tar) = %v; want ErrFlatTar with the file as Spool", err)
	}
}
