package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/qemu"
)

// probeImage is an image whose one layer holds the probe at /app/probe.
func probeImage(t *testing.T, a Artifacts, cfg v1.Config) v1.Image {
	t.Helper()
	dir := t.TempDir()
	a.BuildProbe(t, dir)
	bin, err := os.ReadFile(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mt := time.Unix(1700000000, 0)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "app/", Mode: 0o755, ModTime: mt})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "app/probe", Mode: 0o755, Size: int64(len(bin)), ModTime: mt})
	tw.Write(bin)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "srv/", Mode: 0o1777, ModTime: mt})
	tw.Close()
	layer := b.Bytes()
	img, err := ociimage.NewImage([]tarball.Opener{func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil }}, ociimage.Spec{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// serveRegistry pushes img to an in-process registry on the host's
// loopback and returns its reference as the guest sees it: QEMU's user
// network reaches the host's 127.0.0.1 at 10.0.2.2.
func serveRegistry(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(hostPort + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	_, port, _ := strings.Cut(hostPort, ":")
	return "10.0.2.2:" + port + "/" + repo
}

// wantClean checks the console for lines and for the absence of failures.
func wantClean(t *testing.T, res qemu.Result, lines ...string) {
	t.Helper()
	for _, want := range lines {
		if !strings.Contains(res.Console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	for _, bad := range []string{"Kernel panic", "boot failed"} {
		if strings.Contains(res.Console, bad) {
			t.Errorf("console shows %q", bad)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", res.Console)
	}
}

// A machine with no disk pulls its root from a registry at boot, into a
// tmpfs, and runs the image's entrypoint with the image's config.
func TestDisklessRegistry(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	img := probeImage(t, a, v1.Config{
		Entrypoint: []string{"/app/probe", "env"},
		Env:        []string{"GREETING=from-the-registry"},
		WorkingDir: "/srv/work",
		User:       "1000:1000",
	})
	ref := serveRegistry(t, "diskless/probe:1", img)
	digest, _ := img.Digest()
	res, err := qemu.VM{Kernel: a.Kernel, Initrd: a.Initrd, MemMB: 512, Timeout: 3 * time.Minute,
		Append: "root=docker://" + ref + " ginit.rootsize=256m"}.Run(t.Context())
	if err != nil {
		t.Fatalf("boot: %v; console:\n%s", err, res.Console)
	}
	t.Logf("VM ran %v, QEMU exit %d", res.Wall.Round(time.Millisecond), res.QEMUExit)
	if os.Getenv("GINIT_TEST_CONSOLE") == "1" {
		t.Logf("console:\n%s", res.Console)
	}
	wantClean(t, res,
		"pulling docker://"+ref+" into a tmpfs root (size=256m)",
		"ocipull: docker://"+ref+" ("+digest.String()+"): 1 layers",
		"probe: uid=1000 gid=1000",
		"cwd=/srv/work",
		"probe: env GREETING=from-the-registry",
		"ginit: entrypoint exited with status 0",
	)
	if got := res.DebugExitStatus(); got != 0 {
		t.Errorf("status = %d; want 0", got)
	}
}

// The same from an OCI image layout on a plain HTTP server, as a PXE
// server would hold it beside the kernel.
func TestDisklessHTTPLayout(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	img := probeImage(t, a, v1.Config{Entrypoint: []string{"/app/probe", "args", "from an HTTP layout"}})
	dir := filepath.Join(t.TempDir(), "layout")
	if err := ociimage.WriteLayout(dir, img, "probe"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(dir))))
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	src := "oci:http://10.0.2.2:" + port + "/layout:probe"
	res, err := qemu.VM{Kernel: a.Kernel, Initrd: a.Initrd, MemMB: 512, Timeout: 3 * time.Minute, Append: "root=" + src}.Run(t.Context())
	if err != nil {
		t.Fatalf("boot: %v; console:\n%s", err, res.Console)
	}
	t.Logf("VM ran %v, QEMU exit %d", res.Wall.Round(time.Millisecond), res.QEMUExit)
	wantClean(t, res,
		"pulling "+src+" into a tmpfs root (size=50%)",
		`probe: arg[0]="from an HTTP layout"`,
		"ginit: entrypoint exited with status 0",
	)
	if got := res.DebugExitStatus(); got != 0 {
		t.Errorf("status = %d; want 0", got)
	}
}

// With ginit.install=, the pulled image goes onto the empty disk, the
// machine reboots, finds the disk holding that image and runs it from
// there; the disk is the format oci2disk makes and passes e2fsck.
func TestInstallAndReboot(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	img := probeImage(t, a, v1.Config{Entrypoint: []string{"/app/probe", "write", "/srv/installed.txt", "ran-from-the-disk", "0"}})
	ref := serveRegistry(t, "install/probe:1", img)
	disk := filepath.Join(t.TempDir(), "empty.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 512<<20); err != nil {
		t.Fatal(err)
	}
	res, err := qemu.VM{Kernel: a.Kernel, Initrd: a.Initrd, Disk: disk, MemMB: 384, Reboot: true, Timeout: 4 * time.Minute,
		Append: "root=docker://" + ref + " ginit.install=/dev/vda"}.Run(t.Context())
	if err != nil {
		t.Fatalf("boot: %v; console:\n%s", err, res.Console)
	}
	t.Logf("VM ran %v, QEMU exit %d", res.Wall.Round(time.Millisecond), res.QEMUExit)
	if os.Getenv("GINIT_TEST_CONSOLE") == "1" {
		t.Logf("console:\n%s", res.Console)
	}
	wantClean(t, res,
		"installing docker://"+ref+" onto /dev/vda",
		"rebooting into it",
		"/dev/vda already holds docker://"+ref,
		"probe: wrote /srv/installed.txt",
		"ginit: entrypoint exited with status 0",
	)
	// Exactly one install: the boot after it used the disk as it was.
	if n := strings.Count(res.Console, "ocipull: installing"); n != 1 {
		t.Errorf("console shows %d installs; want 1", n)
	}
	if got := res.DebugExitStatus(); got != 0 {
		t.Errorf("status = %d; want 0", got)
	}
	Fsck(t, disk)
	if got := DebugfsCat(t, disk, "/srv/installed.txt"); got != "ran-from-the-disk\n" {
		t.Errorf("/srv/installed.txt on the disk = %q; want ran-from-the-disk", got)
	}
	raw, _ := img.RawConfigFile()
	if got := DebugfsCat(t, disk, "/.ginit/image.json"); got != string(raw) {
		t.Errorf("/.ginit/image.json on the disk = %s; want the image's config %s", got, raw)
	}
}

// An image that cannot pull (minimal has no ocipull) and a reference the
// registry does not have each end the boot with one clear line, status 125.
func TestDisklessErrors(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	minimal := FindArtifacts(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	for _, tc := range []struct {
		name, initrd, root, want string
	}{
		{"minimal", minimal.Initrd, "docker://10.0.2.2:" + port + "/app:1", "this image cannot pull images at boot"},
		{"missing", a.Initrd, "docker://10.0.2.2:" + port + "/nothing:1", "ocipull exited with status 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := qemu.VM{Kernel: a.Kernel, Initrd: tc.initrd, MemMB: 512, Timeout: 3 * time.Minute,
				Append: "root=" + tc.root + " ginit.onerror=poweroff"}.Run(t.Context())
			if err != nil {
				t.Fatalf("boot: %v; console:\n%s", err, res.Console)
			}
			if n := strings.Count(res.Console, "ginit: boot failed:"); n != 1 || !strings.Contains(res.Console, tc.want) {
				t.Errorf("console has %d boot failed lines; want one saying %q; console:\n%s", n, tc.want, res.Console)
			}
			if strings.Contains(res.Console, "Kernel panic") {
				t.Errorf("kernel panic")
			}
			if got := res.DebugExitStatus(); got != 125 {
				t.Errorf("status = %d; want 125", got)
			}
		})
	}
}
