package ociimage_test

import (
	"archive/tar"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/ociimage"
)

// fast is Net with deadlines small enough for a test.
var fast = ociimage.Net{DialTimeout: 400 * time.Millisecond, TLSTimeout: 400 * time.Millisecond,
	HeaderTimeout: 400 * time.Millisecond, StallTimeout: 400 * time.Millisecond, Retries: 1, RetryWait: 20 * time.Millisecond}

// A registry or layout server that accepts and stays silent ends the open
// with one line that names the host and the deadline, soon.
func TestSilentServer(t *testing.T) {
	host := disktest.SilentListener(t)
	for _, src := range [][2]string{{ociimage.Docker, host + "/app:1"}, {ociimage.OCI, "http://" + host + "/layout"}} {
		start := time.Now()
		im, err := ociimage.Open(context.Background(), src[0], src[1], ociimage.Options{Net: fast, Keychain: authn.NewMultiKeychain()})
		took := time.Since(start)
		if err == nil {
			im.Close()
			t.Fatalf("Open(%s:%s) = nil error; want one", src[0], src[1])
		}
		msg := err.Error()
		t.Logf("Open(%s:%s) took %v: %v", src[0], src[1], took.Round(time.Millisecond), err)
		if !strings.Contains(msg, host) || !strings.Contains(msg, "no answer within 400ms") || !strings.Contains(msg, "tried 2 times") || strings.Contains(msg, "\n") {
			t.Errorf("Open(%s:%s) = %q; want one line naming %s, the deadline and the tries", src[0], src[1], msg, host)
		}
		if took > 5*time.Second {
			t.Errorf("Open(%s:%s) took %v; want about 1s (2 tries of 400ms)", src[0], src[1], took)
		}
	}
}

// bigImage is an image of one layer holding size random bytes, so that
// its blob is about as large.
func bigImage(t *testing.T, size int) v1.Image {
	t.Helper()
	body := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(body)
	layer := disktest.Tar(t, disktest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644}, Body: string(body)})
	img, err := ociimage.NewImage([]tarball.Opener{disktest.Opener(layer)}, ociimage.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// blobServer is a registry whose layer blobs are served by serve.
func blobServer(t *testing.T, img v1.Image, serve func(w http.ResponseWriter, blob []byte, done <-chan struct{})) string {
	t.Helper()
	done := make(chan struct{})
	host := disktest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ls, _ := img.Layers()
			d, _ := ls[0].Digest()
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
				h.ServeHTTP(w, r)
				return
			}
			rc, _ := ls[0].Compressed()
			blob, _ := io.ReadAll(rc)
			select {
			case <-done:
			default:
				serve(w, blob, r.Context().Done())
			}
		})
	})
	t.Cleanup(func() { close(done) }) // runs before the server's Close
	return disktest.Push(t, host, "app:1", img)
}

// readLayer reads the image's one layer to its end and checks it.
func readLayer(ref string, n ociimage.Net) error {
	im, err := ociimage.Open(context.Background(), ociimage.Docker, ref, ociimage.Options{Net: n, Keychain: authn.NewMultiKeychain()})
	if err != nil {
		return err
	}
	defer im.Close()
	lr, err := im.Layers[0].Open(nil)
	if err != nil {
		return err
	}
	defer lr.Close()
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return err
	}
	return lr.Verify()
}

// A layer whose server sends the headers and part of the blob, then
// nothing, fails as stalled; one that trickles slower than the deadline
// in all but moves is read whole.
func TestStalledAndSlowLayer(t *testing.T) {
	img := bigImage(t, 256<<10)
	stalled := blobServer(t, img, func(w http.ResponseWriter, blob []byte, done <-chan struct{}) {
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		w.Write(blob[:len(blob)/2])
		w.(http.Flusher).Flush()
		<-done
	})
	start := time.Now()
	err := readLayer(stalled, fast)
	t.Logf("stalled layer, after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, ociimage.ErrStalled) || !strings.Contains(err.Error(), "stalled: no data for 400ms") || strings.Contains(err.Error(), "\n") {
		t.Errorf("reading a stalled layer = %v; want one line saying stalled: no data for 400ms", err)
	}

	slow := blobServer(t, img, func(w http.ResponseWriter, blob []byte, done <-chan struct{}) {
		w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		chunk := len(blob)/8 + 1
		for i := 0; i < len(blob); i += chunk {
			w.Write(blob[i:min(i+chunk, len(blob))])
			w.(http.Flusher).Flush()
			time.Sleep(150 * time.Millisecond)
		}
	})
	start = time.Now()
	if err := readLayer(slow, fast); err != nil {
		t.Errorf("reading a slow layer (150ms between chunks, 400ms allowed) = %v; want it read", err)
	}
	if took := time.Since(start); took < 2*fast.StallTimeout {
		t.Errorf("the slow layer took %v; want more than %v, or the test proves nothing", took, 2*fast.StallTimeout)
	}
}

// A busy server (503) is asked again a bounded number of times.
func TestRetries(t *testing.T) {
	img := bigImage(t, 1<<10)
	var n atomic.Int32
	ref := blobServer(t, img, func(w http.ResponseWriter, blob []byte, done <-chan struct{}) {
		if n.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(blob)
	})
	two := fast
	two.Retries = 2
	if err := readLayer(ref, two); err != nil || n.Load() != 3 {
		t.Errorf("with 2 retries, after two 503s: err = %v after %d tries; want the layer on the 3rd", err, n.Load())
	}
	n.Store(0)
	none := fast
	none.Retries = -1
	if err := readLayer(ref, none); err == nil || !strings.Contains(err.Error(), "503") || n.Load() != 1 {
		t.Errorf("with no retries, a 503: err = %v after %d tries; want a 503 error after 1", err, n.Load())
	}
}

// A private registry: HTTPS with its own CA and a login. With the CA added
// to the system's and the login, the pull works; without the CA it fails
// with one line that says the certificate is not trusted and what helps.
func TestPrivateRegistry(t *testing.T) {
	p := disktest.NewPrivateRegistry(t)
	img := bigImage(t, 1<<10)
	disktest.Push(t, p.Host, "private/app:1", img)
	ref := p.TLSHost + "/private/app:1"
	login := authn.NewMultiKeychain(staticKeychain{p.TLSHost, authn.FromConfig(authn.AuthConfig{Username: p.User, Password: p.Password})})

	pool, err := ociimage.SystemCAs(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	// Added to the system's roots, not in their place.
	if sys, err := x509.SystemCertPool(); err == nil && len(pool.Subjects()) != len(sys.Subjects())+1 { //nolint:staticcheck // Subjects counts a pool read from files
		t.Errorf("SystemCAs(ca.pem) holds %d subjects; want the system's %d and the CA", len(pool.Subjects()), len(sys.Subjects()))
	}
	withCA := fast
	withCA.RootCAs = pool
	im, err := ociimage.Open(context.Background(), ociimage.Docker, ref, ociimage.Options{Net: withCA, Keychain: login})
	if err != nil {
		t.Fatalf("Open(%s) with the CA and the login = %v; want the image", ref, err)
	}
	im.Close()

	_, err = ociimage.Open(context.Background(), ociimage.Docker, ref, ociimage.Options{Net: withCA, Keychain: authn.NewMultiKeychain()})
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("Open(%s) with no login = %v; want an UNAUTHORIZED error", ref, err)
	}

	_, err = ociimage.Open(context.Background(), ociimage.Docker, ref, ociimage.Options{Net: fast, Keychain: login})
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), "--ca-cert") ||
		strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "HTTP request to an HTTPS server") {
		t.Errorf("Open(%s) without the CA = %q; want one line about the unknown authority and --ca-cert", ref, err)
	} else {
		t.Logf("without the CA: %v", err)
	}

	if _, err := ociimage.SystemCAs(p.CAFile + ".missing"); err == nil {
		t.Errorf("SystemCAs(a missing file) = nil error; want one")
	}
}

type staticKeychain struct {
	host string
	auth authn.Authenticator
}

func (k staticKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return k.auth, nil
	}
	return authn.Anonymous, nil
}
