package vmrun

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/modinfo/modtest"
	"github.com/ginit-dev/ginit/internal/rundoc"
)

func TestGuestDocument(t *testing.T) {
	dir := t.TempDir()
	o := Options{GuestOptions: GuestOptions{
		DNS: []string{"192.0.2.53"}, AddHosts: []string{"db:10.0.0.2", "host:host-gateway"},
		Tmpfs: []string{"/scratch:size=1m,exec", "/cache"}, ReadOnly: true, StopSignal: "SIGUSR1",
		Volumes: []string{dir + ":/data:ro", "cache:/var/cache", "./" + filepath.Base(dir) + "/../" + filepath.Base(dir) + ":/rel"},
	}}
	// A relative host directory is the caller's.
	t.Chdir(filepath.Dir(dir))
	doc, err := Document(o)
	if err != nil {
		t.Fatalf("Document = %v", err)
	}
	want := rundoc.Document{
		Version: rundoc.Version, DNS: []string{"192.0.2.53"}, ExtraHosts: []string{"db:10.0.0.2", "host:" + hostGateway},
		Tmpfs: map[string]string{"/scratch": "size=1m,exec", "/cache": ""}, ReadOnly: true, StopSignal: "SIGUSR1",
		Volumes: []rundoc.Volume{
			{Type: rundoc.VirtioFS, Source: "ginit-fs0", Target: "/data", ReadOnly: true},
			{Type: rundoc.Disk, Source: "ginit-vol1", Target: "/var/cache"},
			{Type: rundoc.VirtioFS, Source: "ginit-fs2", Target: "/rel"},
		},
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("Document =\n%+v\nwant\n%+v", doc, want)
	}
	vols, err := parseVolumes(o.Volumes)
	if err != nil || vols[0].hostDir != dir || vols[2].hostDir != dir || vols[1].name != "cache" {
		t.Errorf("parseVolumes = %+v, %v; want %s twice and the volume cache", vols, err, dir)
	}
}

func TestGuestDocumentErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		g    GuestOptions
		want string
	}{
		{GuestOptions{Volumes: []string{dir + "/nosuch:/x"}}, "host directory " + dir + "/nosuch does not exist"},
		{GuestOptions{Volumes: []string{file + ":/x"}}, "does not exist"},
		{GuestOptions{Volumes: []string{"vol"}}, "-v vol: want SOURCE:TARGET[:ro]"},
		{GuestOptions{Volumes: []string{"vol:/x:rx"}}, "want SOURCE:TARGET[:ro]"},
		{GuestOptions{Volumes: []string{"-bad:/x"}}, `volume name "-bad"`},
		{GuestOptions{Volumes: []string{"vol:x"}}, `target "x": want a clean absolute path`},
		{GuestOptions{Volumes: []string{"a:/x", "b:/x"}}, `target "/x": mounted twice`},
		{GuestOptions{DNS: []string{"dns.example"}}, `field "dns"[0]`},
		{GuestOptions{AddHosts: []string{"db"}}, `want NAME:IP`},
		{GuestOptions{Tmpfs: []string{"/x:bogus"}}, `tmpfs option "bogus"`},
		{GuestOptions{Tmpfs: []string{"/x", "/x:size=1m"}}, "--tmpfs /x: given twice"},
		{GuestOptions{StopSignal: "SIGNOPE"}, `field "stop_signal"`},
		{GuestOptions{Credentials: []string{"s3cret"}}, "--credential: want NAME=VALUE"},
		{GuestOptions{Credentials: []string{"a/b=1"}}, "want a NAME of 1 to 28 bytes"},
		{GuestOptions{LoadCredentials: []string{"tok:" + dir + "/nosuch"}}, "--load-credential tok: open"},
	} {
		_, err := Document(Options{GuestOptions: tc.g})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Document(%+v) = %v; want an error containing %q", tc.g, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Document(%+v) = %v; shows a credential", tc.g, err)
		}
	}
}

func TestVolumes(t *testing.T) {
	s := State(t.TempDir())
	if vols, err := s.ListVolumes(); err != nil || len(vols) != 0 {
		t.Errorf("ListVolumes() of a new state = %v, %v; want none", vols, err)
	}
	disk, err := s.ensureVolume("data")
	if err != nil {
		t.Fatalf("ensureVolume = %v", err)
	}
	if err := os.WriteFile(disk+".mark", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// Made once: a second use finds the same disk.
	if again, err := s.ensureVolume("data"); err != nil || again != disk {
		t.Errorf("ensureVolume again = %q, %v; want %q", again, err, disk)
	}
	if vols, err := s.ListVolumes(); err != nil || len(vols) != 1 || vols[0].Name != "data" || vols[0].Size <= 0 || vols[0].Size > 64<<20 {
		t.Errorf("ListVolumes() = %+v, %v; want data, sparse", vols, err)
	}
	// A lock where QEMU takes its locks: the volume is in use.
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	lk := unix.Flock_t{Type: unix.F_RDLCK, Start: 101, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ensureVolume("data"); !errors.Is(err, ErrVolumeInUse) {
		t.Errorf("ensureVolume(locked) = %v; want ErrVolumeInUse", err)
	}
	if err := s.RemoveVolume("data"); !errors.Is(err, ErrVolumeInUse) {
		t.Errorf("RemoveVolume(locked) = %v; want ErrVolumeInUse", err)
	}
	f.Close()
	if err := s.RemoveVolume("data"); err != nil {
		t.Errorf("RemoveVolume = %v", err)
	}
	if err := s.RemoveVolume("data"); err == nil || !strings.Contains(err.Error(), "volume data") {
		t.Errorf("RemoveVolume(removed) = %v; want an error naming it", err)
	}
}

// The initramfs with extra modules is the initramfs, padded to 4 bytes,
// then an archive of the modules; made once per content.
func TestWithModules(t *testing.T) {
	tmp := t.TempDir()
	const release = "6.1.0-test-amd64"
	kernel := filepath.Join(tmp, "vmlinuz")
	mod := filepath.Join(tmp, "lib/modules", release, "kernel/fs/fuse")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, deps := range map[string]string{"fuse": "", "virtiofs": "fuse"} {
		ko := modtest.Module("name="+name, "depends="+deps, "vermagic="+release+" SMP mod_unload")
		if err := os.WriteFile(filepath.Join(mod, name+".ko"), ko, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	initrd := filepath.Join(tmp, "minimal.cpio")
	if err := os.WriteFile(initrd, []byte("070701000"), 0o644); err != nil { // 9 bytes: padded to 12
		t.Fatal(err)
	}
	s := State(filepath.Join(tmp, "state"))
	out, err := withModules(s, kernel, initrd, []string{"virtiofs"})
	if err != nil {
		t.Fatalf("withModules = %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("070701000\x00\x00\x00070701")) || !bytes.Contains(b, []byte("modules.extra.dep")) || !bytes.Contains(b, []byte("kernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko")) {
		t.Errorf("withModules wrote %q...; want the initramfs, padding, then an archive with modules.extra.dep", b[:min(len(b), 40)])
	}
	if again, err := withModules(s, kernel, initrd, []string{"virtiofs"}); err != nil || again != out {
		t.Errorf("withModules again = %q, %v; want the kept %q", again, err, out)
	}
	if _, err := withModules(s, filepath.Join(tmp, "elsewhere/vmlinuz"), initrd, []string{"virtiofs"}); err == nil || !strings.Contains(err.Error(), "lib/modules/RELEASE") {
		t.Errorf("withModules(no modules beside the kernel) = %v; want an error naming where it looked", err)
	}
}

// inspect shows the guest options, and of the credentials their names only.
func TestGuestConfig(t *testing.T) {
	g := GuestOptions{DNS: []string{"192.0.2.53"}, ReadOnly: true, Volumes: []string{"data:/data"},
		Credentials: []string{"token=s3cret"}, LoadCredentials: []string{"key:/etc/key"}}
	b, err := json.Marshal(config(rundoc.Document{}, Options{GuestOptions: g}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"dns":["192.0.2.53"]`, `"read_only":true`, `"volumes":["data:/data"]`, `"credential_names":["token","key"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("inspect's config %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), "s3cret") {
		t.Errorf("inspect's config %s shows a credential's value", b)
	}
}
