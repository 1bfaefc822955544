package pull

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// testImage is two layers: the second removes a file of the first and adds
// an owned, setuid file and a device node.
func testImage(t *testing.T) v1.Image {
	img, err := ociimage.NewImage([]tarball.Opener{
		disktest.Opener(disktest.Tar(t,
			disktest.Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: "etc/"}},
			disktest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "etc/gone"}, Body: "old"},
			disktest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "etc/motd"}, Body: "hello\n"})),
		disktest.Opener(disktest.Tar(t,
			disktest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.gone"}},
			disktest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "bin/app", Mode: 0o4750, Uid: 1000, Gid: 50}, Body: "#!app"},
			disktest.Entry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}})),
	}, ociimage.Spec{Config: v1.Config{Entrypoint: []string{"/bin/app"}, Env: []string{"A=1"}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// noatimeDir is a fresh tmpfs mounted noatime, as ginit mounts the
// diskless root.
func noatimeDir(t *testing.T) string {
	t.Helper()
	testenv.NeedRoot(t, "a tmpfs mount, chown and mknod")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOATIME, "mode=0755"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// A pull from a registry on loopback gives the flattened tree with its
// real metadata, the image's config byte for byte, and the source record.
func TestIntoFromRegistry(t *testing.T) {
	root := noatimeDir(t)
	img := testImage(t)
	ref := disktest.Push(t, disktest.Registry(t, nil), "app:1", img)
	rep, err := Into(context.Background(), "docker://"+ref, root, Options{})
	if err != nil {
		t.Fatalf("Into(docker://%s) = %v", ref, err)
	}
	digest, _ := img.Digest()
	if rep.Source.Digest != digest.String() || rep.Layers != 2 || rep.Bytes == 0 {
		t.Errorf("report = %+v; want digest %s, 2 layers, bytes read", rep, digest)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etc/gone: %v; want removed by the whiteout", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/motd")); string(b) != "hello\n" {
		t.Errorf("etc/motd = %q; want hello", b)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "bin/app"), &st); err != nil || st.Mode != unix.S_IFREG|0o4750 || st.Uid != 1000 || st.Gid != 50 {
		t.Errorf("bin/app: mode %o uid %d gid %d (%v); want 104750 1000 50", st.Mode, st.Uid, st.Gid, err)
	}
	if err := unix.Lstat(filepath.Join(root, "dev/null"), &st); err != nil || st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %#x (%v); want a character device 1,3", st.Mode, st.Rdev, err)
	}
	raw, _ := img.RawConfigFile()
	if got, _ := os.ReadFile(filepath.Join(root, ".ginit/image.json")); !bytes.Equal(got, raw) {
		t.Errorf(".ginit/image.json = %s; want the image's config %s", got, raw)
	}
	src, err := imagespec.ReadSource(root)
	if err != nil || src.Source != "docker://"+ref || src.Digest != digest.String() {
		t.Errorf("ReadSource = %+v, %v; want docker://%s at %s", src, err, ref, digest)
	}
	// A second pull into the now full directory is refused.
	if _, err := Into(context.Background(), "docker://"+ref, root, Options{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Into(a full directory) = %v; want a not-empty error", err)
	}
}

// tamperingRegistry is a registry on loopback holding testImage as app:1
// that, once *tamper is set, serves every layer blob with one byte changed.
// It returns the image's reference.
func tamperingRegistry(t *testing.T) (string, *bool) {
	tamper := new(bool)
	host := disktest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !*tamper || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
				h.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if len(body) > 40 && !bytes.HasPrefix(body, []byte("{")) {
				body[len(body)-20] ^= 0xff // inside the gzip stream's data or trailer
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		})
	})
	return disktest.Push(t, host, "app:1", testImage(t)), tamper
}

// A registry that serves a layer other than the one the manifest names is
// caught by the checks, and the error names the layer.
func TestIntoRefusesBadLayer(t *testing.T) {
	root := noatimeDir(t)
	ref, tamper := tamperingRegistry(t)
	*tamper = true
	_, err := Into(context.Background(), "docker://"+ref, root, Options{})
	if err == nil || !strings.Contains(err.Error(), "layer 1") {
		t.Errorf("Into(a tampered layer) = %v; want an error naming layer 1", err)
	}
}

func TestIntoRefusesNonImage(t *testing.T) {
	for _, src := range []string{"dir:/etc", "tar:/nonexistent.tar"} {
		if _, err := Into(context.Background(), src, t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "not a container image") {
			t.Errorf("Into(%s) = %v; want a not-a-container-image error", src, err)
		}
	}
}
