package imagebuild

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/u-root/mkuimage/cpio"

	"github.com/ginit-dev/ginit/internal/modinfo/modtest"
	"github.com/ginit-dev/ginit/internal/testenv"
)

const testConfig = `{
  "commands": {"core": ["./cmds/ginit"]},
  "configs": {
    "minimal": {"commands": [{"builder": "gbb", "commands": ["core"]}], "init": "ginit"},
    "plain": {},
    "typo": {},
    "badcompress": {}
  },
  "ginit": {"configs": {
    "minimal": {"compress": ["xz", "gz"], "modules": ["virtio_blk"], "budget_xz_bytes": 1572864},
    "typo": {"budget_xz_byte": 10},
    "badcompress": {"compress": ["zstd"]}
  }}
}`

func TestParseSettings(t *testing.T) {
	s, err := ParseSettings([]byte(testConfig), "minimal", "uroot.json")
	if err != nil {
		t.Fatalf("ParseSettings(minimal) = %v", err)
	}
	want := Settings{Compress: []string{"xz", "gz"}, Modules: []string{"virtio_blk"}, BudgetXZBytes: 1572864}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("ParseSettings(minimal) = %+v; want %+v", s, want)
	}
	if !s.Wants(CompressGZ) || !s.Wants(CompressXZ) {
		t.Errorf("Wants() = false for a listed format")
	}

	s, err = ParseSettings([]byte(testConfig), "plain", "uroot.json")
	if err != nil {
		t.Fatalf("ParseSettings(plain) = %v", err)
	}
	if want := (Settings{Compress: []string{"xz"}}); !reflect.DeepEqual(s, want) {
		t.Errorf("ParseSettings(plain) = %+v; want defaults %+v", s, want)
	}

	for _, tt := range []struct{ name, want string }{
		{"typo", "budget_xz_byte"},
		{"badcompress", "zstd"},
		{"nosuch", "no config \"nosuch\""},
	} {
		_, err := ParseSettings([]byte(testConfig), tt.name, "uroot.json")
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "uroot.json") {
			t.Errorf("ParseSettings(%s) = %v; want an error naming uroot.json and %q", tt.name, err, tt.want)
		}
	}
}

// TestRepoConfig checks the project's own uroot.json.
func TestRepoConfig(t *testing.T) {
	for _, name := range []string{"minimal", "debug", "linuxboot"} {
		s, err := LoadSettings("../../uroot.json", name)
		if err != nil {
			t.Errorf("LoadSettings(uroot.json, %s) = %v", name, err)
			continue
		}
		if len(s.Modules) == 0 {
			t.Errorf("%s: no modules", name)
		}
	}
}

func TestImageRecords(t *testing.T) {
	im := NewImage()
	for _, r := range BaseRecords() {
		if err := im.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	add := func(r cpio.Record) {
		t.Helper()
		r.MTime, r.UID, r.Ino = 12345, 1000, 77
		if err := im.Add(r); err != nil {
			t.Fatalf("Add(%s) = %v", r.Name, err)
		}
	}
	add(cpio.StaticFile("/lib/modules/1.0/kernel/a.ko", "ko", 0o644))
	add(cpio.Symlink("init", "bbin/ginit"))
	add(cpio.Directory("bin", 0o700))                 // a directory again: the first stays
	add(cpio.StaticFile("etc/hosts", "x\n", 0o644))   // new
	add(cpio.StaticFile("./etc/hosts", "x\n", 0o644)) // the same again: fine
	add(cpio.Directory(".", 0o755))                   // the root itself is dropped
	if err := im.Add(cpio.StaticFile("etc/hosts", "y\n", 0o644)); err == nil || !strings.Contains(err.Error(), "etc/hosts") {
		t.Errorf("Add(different etc/hosts) = %v; want an error naming etc/hosts", err)
	}
	if err := im.Add(cpio.StaticFile("../escape", "", 0o644)); err == nil {
		t.Errorf("Add(../escape) = nil; want an error")
	}

	recs := im.Records()
	var got []string
	for _, r := range recs {
		got = append(got, r.Name)
		if r.MTime != 0 || r.UID != 0 || r.Ino != 0 {
			t.Errorf("%s: mtime %d uid %d ino %d; want all 0", r.Name, r.MTime, r.UID, r.Ino)
		}
	}
	want := []string{"bin", "dev", "dev/console", "dev/null", "etc", "etc/hosts", "init", "lib",
		"lib/modules", "lib/modules/1.0", "lib/modules/1.0/kernel", "lib/modules/1.0/kernel/a.ko",
		"proc", "root", "run", "sys", "tmp"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Records() names = %q; want %q", got, want)
	}
	if r, _ := im.Get("bin"); r.Mode != cpio.S_IFDIR|0o755 {
		t.Errorf("bin mode = %#o; want the first one, %#o", r.Mode, cpio.S_IFDIR|0o755)
	}

	// Written twice, the archive is the same bytes, and reads back.
	var a, b bytes.Buffer
	if err := WriteArchive(&a, recs); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(&b, im.Records()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two writes of the same image differ")
	}
	back, err := ReadArchive(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(recs) {
		t.Errorf("read back %d records; want %d", len(back), len(recs))
	}
}

// goBinary returns the bytes of a Go executable: this test binary.
func goBinary(t *testing.T) []byte {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func file(name string, data []byte, perm uint64) cpio.Record {
	return cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm})
}

func TestCheckGoOnly(t *testing.T) {
	gobin := goBinary(t)
	cELF := modtest.ELF(elf.ET_EXEC, modtest.Section{Name: ".text", Data: []byte{0x90, 0xc3}})
	ok := []cpio.Record{
		file("bbin/bb", gobin, 0o755),
		cpio.Symlink("bbin/ls", "bb"),
		file("etc/profile", []byte("export PATH=/bbin\n"), 0o644),
		file("lib/modules/1/kernel/a.ko", modtest.Module("name=a"), 0o644),
		cpio.Directory("bin", 0o755),
		cpio.CharDev("dev/null", 0o666, 1, 3),
	}
	if err := CheckGoOnly(ok); err != nil {
		t.Errorf("CheckGoOnly(Go-only image) = %v", err)
	}

	for _, tt := range []struct {
		rec  cpio.Record
		want string
	}{
		{file("bin/hello.sh", []byte("#!/bin/sh\necho hi\n"), 0o755), "a script (#!/bin/sh)"},
		{file("bin/cprog", cELF, 0o755), "not a Go binary"},
		{file("lib/cprog-noexec", cELF, 0o644), "not a Go binary"},
		{file("bin/text", []byte("hello"), 0o700), "not an ELF file"},
		{file("etc/banner", append(append([]byte("xx "), busyboxBanner...), "1.36.1 (Debian) multi-call binary."...), 0o644), "busybox banner"},
		{cpio.Symlink("bin/busybox", "../bbin/bb"), "named busybox"},
	} {
		err := CheckGoOnly(append(append([]cpio.Record{}, ok...), tt.rec))
		if !errors.Is(err, ErrNotGoOnly) || !strings.Contains(err.Error(), "/"+tt.rec.Name+": ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckGoOnly(+%s) = %v; want ErrNotGoOnly naming /%s and %q", tt.rec.Name, err, tt.rec.Name, tt.want)
		}
	}

	// A real C program from the host, when there is one.
	if b, err := os.ReadFile("/bin/true"); err == nil {
		err := CheckGoOnly([]cpio.Record{file("bin/true", b, 0o755)})
		if err == nil || !strings.Contains(err.Error(), "/bin/true") {
			t.Errorf("CheckGoOnly(host /bin/true) = %v; want an error naming /bin/true", err)
		}
	}
}

// TestCheckGoOnlyArchive puts a script with its exec bit in a cpio archive,
// as a build would, and expects the check to name it.
func TestCheckGoOnlyArchive(t *testing.T) {
	im := NewImage()
	if err := im.Add(file("bbin/bb", goBinary(t), 0o755)); err != nil {
		t.Fatal(err)
	}
	if err := im.AddFile("usr/bin/setup", []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, im.Records()); err != nil {
		t.Fatal(err)
	}
	recs, err := ReadArchive(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckGoOnly(recs)
	if err == nil || !strings.Contains(err.Error(), "/usr/bin/setup") || strings.Contains(err.Error(), "bbin/bb") {
		t.Errorf("CheckGoOnly(archive) = %v; want an error naming /usr/bin/setup only", err)
	}
}

// writeKernel makes a lib/modules/<release> directory of generated modules.
func writeKernel(t *testing.T, release, vermagic string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib", "modules", release)
	files := map[string][]byte{
		"kernel/drivers/block/virtio_blk.ko":   modtest.Module("name=virtio_blk", "depends=virtio,virtio_ring", "alias=virtio:d00000002v*", "vermagic="+vermagic),
		"kernel/drivers/virtio/virtio.ko":      modtest.Module("name=virtio", "depends=virtio_ring", "vermagic="+vermagic),
		"kernel/drivers/virtio/virtio_ring.ko": modtest.Module("name=virtio_ring", "depends=", "vermagic="+vermagic),
		"kernel/drivers/net/unused.ko":         modtest.Module("name=unused", "depends=", "vermagic="+vermagic),
		"modules.builtin":                      []byte("kernel/fs/ext4/ext4.ko\n"),
	}
	for p, b := range files {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestAddModules(t *testing.T) {
	const release = "6.1.0-test-amd64"
	dir := writeKernel(t, release, release+" SMP mod_unload")
	im := NewImage()
	mods, err := AddModules(im, dir, []string{"virtio_blk", "ext4", "e1000"})
	if err != nil {
		t.Fatalf("AddModules() = %v", err)
	}
	if mods.Release != release || mods.Dir != "lib/modules/"+release {
		t.Errorf("AddModules() release %q dir %q", mods.Release, mods.Dir)
	}
	if got := strings.Join(mods.Missing, " "); got != "e1000" {
		t.Errorf("Missing = %q; want e1000", got)
	}
	if got := strings.Join(mods.Builtin, " "); got != "ext4" {
		t.Errorf("Builtin = %q; want ext4", got)
	}
	read := func(name string) string {
		t.Helper()
		r, ok := im.Get(name)
		if !ok {
			t.Fatalf("image has no %s", name)
		}
		b, err := contents(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	base := "lib/modules/" + release + "/"
	wantDep := "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n" +
		"kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n" +
		"kernel/drivers/virtio/virtio_ring.ko:\n"
	if got := read(base + "modules.dep"); got != wantDep {
		t.Errorf("modules.dep =\n%s\nwant\n%s", got, wantDep)
	}
	if got := read(base + "modules.alias"); !strings.Contains(got, "alias virtio:d00000002v* virtio_blk\n") {
		t.Errorf("modules.alias = %q; want the virtio_blk alias", got)
	}
	if got := read(base + "modules.builtin"); got != "kernel/fs/ext4/ext4.ko\n" {
		t.Errorf("modules.builtin = %q", got)
	}
	if got := read(ModulesLoadPath); got != "virtio_blk\n" {
		t.Errorf("%s = %q; want virtio_blk", ModulesLoadPath, got)
	}
	if _, ok := im.Get(base + "kernel/drivers/net/unused.ko"); ok {
		t.Errorf("image carries a module nobody asked for")
	}
	if err := CheckGoOnly(im.Records()); err != nil {
		t.Errorf("CheckGoOnly(modules) = %v", err)
	}
}

// An extra archive, unpacked after the image, adds modules without
// replacing the image's index or load list.
func TestAddExtraModules(t *testing.T) {
	const release = "6.1.0-test-amd64"
	dir := writeKernel(t, release, release+" SMP mod_unload")
	im := NewImage()
	if _, err := AddExtraModules(im, dir, []string{"virtio"}); err != nil {
		t.Fatalf("AddExtraModules() = %v", err)
	}
	var names []string
	for _, r := range im.Records() {
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG {
			names = append(names, r.Name)
		}
	}
	base := "lib/modules/" + release + "/"
	want := []string{ExtraModulesLoadPath, base + "kernel/drivers/virtio/virtio.ko", base + "kernel/drivers/virtio/virtio_ring.ko", base + "modules.extra.dep"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("AddExtraModules files = %q; want %q", names, want)
	}
	for name, want := range map[string]string{
		ExtraModulesLoadPath:       "virtio\n",
		base + "modules.extra.dep": "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio_ring.ko:\n",
	} {
		r, _ := im.Get(name)
		if b, err := contents(r); string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
}

func TestAddModulesWrongKernel(t *testing.T) {
	dir := writeKernel(t, "6.1.0-test-amd64", "6.2.0-other SMP")
	_, err := AddModules(NewImage(), dir, []string{"virtio_blk"})
	if err == nil || !strings.Contains(err.Error(), "6.2.0-other") || !strings.Contains(err.Error(), "virtio_ring.ko") {
		t.Errorf("AddModules(wrong vermagic) = %v; want an error naming the module and its kernel", err)
	}
	if _, err := AddModules(NewImage(), filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Errorf("AddModules(missing dir) = nil; want an error")
	}
}

func TestCompress(t *testing.T) {
	data := bytes.Repeat([]byte("ginit initramfs "), 4096)
	var a, b bytes.Buffer
	if err := GZ(&a, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if err := GZ(&b, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("GZ is not reproducible")
	}
	zr, err := gzip.NewReader(&a)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(back, data) {
		t.Errorf("GZ round trip = %d bytes, %v; want %d bytes", len(back), err, len(data))
	}

	if _, err := exec.LookPath("xz"); err != nil {
		testenv.Missing(t, "no xz program (Debian package xz-utils): skipping the xz half")
	}
	var x bytes.Buffer
	if err := XZ(&x, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// Stream flags byte 7 holds the check type: 0x01 is CRC32.
	if x.Len() < 8 || !bytes.HasPrefix(x.Bytes(), []byte("\xfd7zXZ\x00")) || x.Bytes()[7] != 0x01 {
		t.Errorf("XZ output header % x; want an xz stream with a CRC32 check", x.Bytes()[:min(8, x.Len())])
	}
}

func TestXZDict(t *testing.T) {
	for _, tt := range []struct {
		size int64
		want string
	}{
		{0, "1MiB"}, {1 << 20, "1MiB"}, {1<<20 + 1, "2MiB"}, {5167900, "8MiB"},
		{10 << 20, "16MiB"}, {1 << 30, "64MiB"}, {-1, "64MiB"},
	} {
		if got := xzDict(tt.size); got != tt.want {
			t.Errorf("xzDict(%d) = %s; want %s", tt.size, got, tt.want)
		}
	}
}

func TestHasBusyboxBanner(t *testing.T) {
	banner := string(busyboxBanner)
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{banner + "1.36.1 (Debian 1:1.36.1-3)", true},
		{"xx" + banner + "x " + banner + "2", true},
		{banner + "ersion", false},
		{"github.com/u-root/gobusybox/src/pkg/bb", false},
		{"", false},
	} {
		if got := hasBusyboxBanner([]byte(tt.in)); got != tt.want {
			t.Errorf("hasBusyboxBanner(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}
