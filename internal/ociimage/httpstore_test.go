package ociimage

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// A layout served by a plain static file server opens as oci:http://...,
// and a blob changed on the server fails its digest check.
func TestHTTPLayout(t *testing.T) {
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
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(dir))))
	defer srv.Close()
	url := srv.URL + "/layout"

	im, err := Open(context.Background(), OCI, url+":two", Options{})
	if err != nil {
		t.Fatalf("Open(oci:%s:two) = %v", url, err)
	}
	if got := readLayers(t, im); len(got) != 1 || got[0] != "two" {
		t.Errorf("oci:%s:two layers hold %q; want [two]", url, got)
	}
	im.Close()
	if _, err := Open(context.Background(), OCI, url, Options{}); err == nil || !strings.Contains(err.Error(), "one, two") {
		t.Errorf("Open(oci:%s) = %v; want an error listing one, two", url, err)
	}
	if _, err := Open(context.Background(), OCI, srv.URL+"/nothing-here", Options{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Open(oci:%s/nothing-here) = %v; want a 404 error", srv.URL, err)
	}

	// Tamper with every blob the server holds: a layer that does not
	// match its digest must not be accepted.
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	for _, b := range blobs {
		data, _ := os.ReadFile(b)
		if bytes.Contains(data, []byte("two")) && !bytes.Contains(data, []byte("mediaType")) {
			os.WriteFile(b, bytes.Replace(data, []byte("two"), []byte("owt"), 1), 0o644)
		}
	}
	im, err = Open(context.Background(), OCI, url+":two", Options{})
	if err == nil {
		defer im.Close()
		l := im.Layers[0]
		lr, oerr := l.Open(nil)
		if oerr == nil {
			io.Copy(io.Discard, lr)
			err = lr.Verify()
			lr.Close()
		} else {
			err = oerr
		}
	}
	if err == nil || !strings.Contains(err.Error(), ErrDigest.Error()) {
		t.Errorf("a tampered blob over HTTP: err = %v; want %v", err, ErrDigest)
	}
}

func TestSplitURLRef(t *testing.T) {
	for arg, want := range map[string][2]string{
		"http://10.0.2.2:8080/layout":    {"http://10.0.2.2:8080/layout", ""},
		"http://10.0.2.2:8080/layout:v1": {"http://10.0.2.2:8080/layout", "v1"},
		"https://h/a/b:app:1":            {"https://h/a/b", "app:1"},
		"http://10.0.2.2:8080":           {"http://10.0.2.2:8080", ""},
	} {
		base, ref := splitURLRef(arg)
		if base != want[0] || ref != want[1] {
			t.Errorf("splitURLRef(%q) = %q, %q; want %q, %q", arg, base, ref, want[0], want[1])
		}
	}
}
