package integration

import (
	"archive/tar"
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/ociimage"
)

// probeImage is an image whose one layer holds the probe at /app/probe
// and a world-writable /srv.
func probeImage(t *testing.T, a Artifacts, cfg v1.Config) v1.Image {
	t.Helper()
	dir := t.TempDir()
	a.BuildProbe(t, dir)
	bin, err := os.ReadFile(filepath.Join(dir, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	layer := disktest.Tar(t,
		disktest.Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: "app/"}},
		disktest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "app/probe", Mode: 0o755}, Body: string(bin)},
		disktest.Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: "srv/", Mode: 0o1777}})
	img, err := ociimage.NewImage([]tarball.Opener{disktest.Opener(layer)}, ociimage.Spec{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// guestAddr is a host loopback address (127.0.0.1:PORT) as the guest
// reaches it: QEMU's user network maps the host's 127.0.0.1 to 10.0.2.2.
func guestAddr(hostPort string) string {
	_, port, _ := strings.Cut(hostPort, ":")
	return "10.0.2.2:" + port
}

// serveRegistry pushes img to an in-process registry on the host's
// loopback and returns its reference as the guest sees it.
func serveRegistry(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	host := disktest.Registry(t, nil)
	disktest.Push(t, host, repo, img)
	return guestAddr(host) + "/" + repo
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
	res := a.Boot(t, VM{MemMB: 512, Timeout: 3 * time.Minute, Append: "root=docker://" + ref + " ginit.rootsize=256m"})
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

// A private registry at boot: HTTPS with a certificate of its own CA, and
// basic auth. The CA (/etc/ginit/ca.d) and Docker's config.json
// (/.docker, ocipull's HOME is /) come in a cpio appended to the image, as
// a user adds them.
func TestDisklessPrivateRegistry(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	p := disktest.NewPrivateRegistry(t)
	img := probeImage(t, a, v1.Config{Entrypoint: []string{"/app/probe", "args", "from a private registry"}})
	disktest.Push(t, p.Host, "private/probe:1", img)
	host := guestAddr(p.TLSHost)
	ca, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(a.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	var extra bytes.Buffer
	w := cpio.Newc.Writer(&extra)
	if err := cpio.WriteRecords(w, []cpio.Record{
		cpio.Directory("etc", 0o755), cpio.Directory("etc/ginit", 0o755), cpio.Directory("etc/ginit/ca.d", 0o755),
		cpio.StaticFile("etc/ginit/ca.d/test-ca.pem", string(ca), 0o644),
		cpio.Directory(".docker", 0o700), cpio.StaticFile(".docker/config.json", string(p.ConfigJSON(host)), 0o600),
	}); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	a.Initrd = filepath.Join(t.TempDir(), "private.cpio")
	if err := os.WriteFile(a.Initrd, append(base, extra.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := host + "/private/probe:1"
	res := a.Boot(t, VM{MemMB: 512, Timeout: 3 * time.Minute, Append: "root=docker://" + ref + " ginit.rootsize=256m"})
	wantClean(t, res,
		"pulling docker://"+ref+" into a tmpfs root",
		`probe: arg[0]="from a private registry"`,
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
	src := "oci:http://" + guestAddr(strings.TrimPrefix(srv.URL, "http://")) + "/layout:probe"
	res := a.Boot(t, VM{MemMB: 512, Timeout: 3 * time.Minute, Append: "root=" + src})
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
	res := a.Boot(t, VM{Disk: disk, MemMB: 384, Reboot: true, Timeout: 4 * time.Minute,
		Append: "root=docker://" + ref + " ginit.install=/dev/vda"})
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

// An image that cannot pull (minimal has no ocipull), a reference the
// registry does not have, and a registry that accepts the connection and
// never answers each end the boot with one clear line that says why,
// then the onerror action (poweroff: status 125). The silent one takes
// ocipull's default deadlines: 3 tries of 30s for the answer.
func TestDisklessErrors(t *testing.T) {
	t.Parallel()
	a := FindLinuxboot(t)
	minimal := FindArtifacts(t)
	registry := guestAddr(disktest.Registry(t, nil))
	silent := guestAddr(disktest.SilentListener(t))
	for _, tc := range []struct {
		name  string
		image Artifacts
		root  string
		want  string
	}{
		{"minimal", minimal, "docker://" + registry + "/app:1", "this image cannot pull images at boot"},
		{"missing", a, "docker://" + registry + "/nothing:1", "ocipull: pulling " + registry + "/nothing:1: GET http://" + registry + "/v2/nothing/manifests/1: NAME_UNKNOWN"},
		{"silent", a, "docker://" + silent + "/app:1", `Get "http://` + silent + `/v2/": connected, but no answer within 30s (tried 3 times)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := tc.image.Boot(t, VM{MemMB: 512, Timeout: 4 * time.Minute, Append: "root=" + tc.root + " ginit.onerror=poweroff"})
			var failed []string
			for _, l := range strings.Split(res.Console, "\n") {
				if strings.Contains(l, "ginit: boot failed:") {
					failed = append(failed, strings.TrimSpace(l))
				}
			}
			if len(failed) != 1 || !strings.Contains(failed[0], tc.want) {
				t.Errorf("boot failed lines = %q; want one saying %q; console:\n%s", failed, tc.want, res.Console)
			}
			noPanic(t, res)
			if got := res.DebugExitStatus(); got != 125 {
				t.Errorf("status = %d; want 125", got)
			}
		})
	}
}
