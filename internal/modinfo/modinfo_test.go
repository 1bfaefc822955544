package modinfo

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ginit-dev/ginit/internal/modinfo/modtest"
	"github.com/ginit-dev/ginit/internal/testenv"
)

func TestParse(t *testing.T) {
	sec := modtest.Modinfo(
		"license=GPL",
		"description=Virtio random number driver",
		"alias=virtio:d00000004v*",
		"depends=virtio,virtio_ring",
		"retpoline=Y",
		"intree=Y",
		"name=virtio_rng",
		"vermagic=6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ",
		"softdep=pre: crc32c-generic post: foo bar",
		"softdep=pre: baz",
		"license=second",
		"garbage-without-equals",
	)
	sec = append(sec, 0, 0, 0) // section padding
	got, err := Parse(sec)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	want := Info{
		Name:     "virtio_rng",
		Depends:  []string{"virtio", "virtio_ring"},
		Aliases:  []string{"virtio:d00000004v*"},
		SoftPre:  []string{"crc32c_generic", "baz"},
		SoftPost: []string{"foo", "bar"},
		Vermagic: "6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ",
		License:  "GPL",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse() = %+v; want %+v", got, want)
	}
	if r := got.Release(); r != "6.1.0-56-cloud-amd64" {
		t.Errorf("Release() = %q; want 6.1.0-56-cloud-amd64", r)
	}
}

func TestParseEmptyDepends(t *testing.T) {
	got, err := Parse(modtest.Modinfo("depends=", "name=scsi_common"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Depends) != 0 || got.Name != "scsi_common" {
		t.Errorf("Parse() = %+v; want no depends, name scsi_common", got)
	}
	if r := (Info{}).Release(); r != "" {
		t.Errorf("Info{}.Release() = %q; want empty", r)
	}
}

func TestParseSoftdep(t *testing.T) {
	for _, tt := range []struct {
		in        string
		pre, post []string
	}{
		{"pre: a b", []string{"a", "b"}, nil},
		{"post: c", nil, []string{"c"}},
		{"pre: a post: b-c pre: d", []string{"a", "d"}, []string{"b_c"}},
		{"gcm", nil, nil}, // as cifs writes it; kmod ignores such words
		{"", nil, nil},
	} {
		pre, post := ParseSoftdep(tt.in)
		if !reflect.DeepEqual(pre, tt.pre) || !reflect.DeepEqual(post, tt.post) {
			t.Errorf("ParseSoftdep(%q) = %q, %q; want %q, %q", tt.in, pre, post, tt.pre, tt.post)
		}
	}
}

func TestRead(t *testing.T) {
	ko := modtest.Module("name=virtio_blk", "depends=virtio,virtio_ring", "alias=virtio:d00000002v*", "vermagic=6.1.0 SMP")
	got, err := Read(bytes.NewReader(ko))
	if err != nil {
		t.Fatalf("Read() = %v", err)
	}
	if got.Name != "virtio_blk" || !reflect.DeepEqual(got.Depends, []string{"virtio", "virtio_ring"}) ||
		!reflect.DeepEqual(got.Aliases, []string{"virtio:d00000002v*"}) || got.Release() != "6.1.0" {
		t.Errorf("Read() = %+v", got)
	}

	noinfo := modtest.ELF(elf.ET_REL, modtest.Section{Name: ".text", Data: []byte{0xc3}})
	if _, err := Read(bytes.NewReader(noinfo)); !errors.Is(err, ErrNoModinfo) {
		t.Errorf("Read(ELF without .modinfo) = %v; want %v", err, ErrNoModinfo)
	}
	if _, err := Read(bytes.NewReader([]byte("#!/bin/sh\n"))); err == nil {
		t.Errorf("Read(not ELF) = nil; want an error")
	}
}

// TestReadRealModule reads a module of a real kernel, when
// GINIT_KERNEL_MODULES names a .../lib/modules/<release> directory.
func TestReadRealModule(t *testing.T) {
	dir := os.Getenv("GINIT_KERNEL_MODULES")
	if dir == "" {
		testenv.Missing(t, "GINIT_KERNEL_MODULES is not set to a lib/modules/<release> directory (scripts/test.sh sets it); generated modules cover the parser")
	}
	tree, err := OpenTree(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	if tree.Len() == 0 {
		t.Fatalf("no modules under %s", dir)
	}
	res, err := tree.Resolve([]string{"virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Load) != 1 && len(res.Builtin) != 1 {
		t.Fatalf("Resolve(virtio_blk) = %+v; want it loaded or built in", res)
	}
	for _, m := range res.Modules {
		if m.Info.Release() != filepath.Base(dir) {
			t.Errorf("%s: release %q; want %q", m.Path, m.Info.Release(), filepath.Base(dir))
		}
	}
}

func TestNameFromPath(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"kernel/drivers/char/hw_random/virtio-rng.ko", "virtio_rng", true},
		{"kernel/fs/ext4/ext4.ko", "ext4", true},
		{"kernel/fs/ext4/ext4.ko.xz", "ext4", true},
		{"kernel/fs/ext4/ext4.ko.zst", "ext4", true},
		{"updates/dkms/zfs.ko.gz", "zfs", true},
		{"modules.dep", "", false},
		{".ko", "", false},
		{"kernel/foo.o", "", false},
	} {
		got, ok := NameFromPath(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NameFromPath(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseBuiltin(t *testing.T) {
	got := ParseBuiltin([]byte("kernel/fs/ext4/ext4.ko\nkernel/drivers/nvme/host/nvme.ko\n\n# comment\nkernel/crypto/crc32c-generic.ko\n"))
	want := map[string]bool{"ext4": true, "nvme": true, "crc32c_generic": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseBuiltin() = %v; want %v", got, want)
	}
}

func TestParseBuiltinModinfo(t *testing.T) {
	in := modtest.Modinfo(
		"crc32c_generic.alias=crypto-crc32c",
		"crc32c_generic.alias=crc32c",
		"crc32c_generic.license=GPL",
		"nvme.alias=pci:v*d*sv*sd*bc01sc08i02*",
		"printk.parm=time:Show timing data",
		"no-dot=x",
	)
	got := ParseBuiltinModinfo(in)
	want := map[string][]string{
		"crc32c_generic": {"crypto-crc32c", "crc32c"},
		"nvme":           {"pci:v*d*sv*sd*bc01sc08i02*"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseBuiltinModinfo() = %v; want %v", got, want)
	}
}

func TestMatchAlias(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"pci:v00008086d00007010sv*sd*bc*sc*i*", "pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80", true},
		{"pci:v00008086d00007010sv*sd*bc*sc*i*", "pci:v00008086d00007011sv00001AF4sd00001100bc01sc01i80", false},
		{"virtio:d00000002v*", "virtio:d00000002v00001AF4", true},
		{"crc32c", "crc32c", true},
		{"crypto-crc32c", "crypto_crc32c", true},
		{"usb:v*p*d*dc*dsc*dp*ic03isc*ip*in*", "usb:v046DpC52Bd1201dc00dsc00dp00ic03isc01ip02in00", true},
		{"pci:v*d*sv*sd*bc0[1-2]sc*i*", "pci:v1d2sv3sd4bc01sc06i01", true},
		{"[", "[", true},  // a bad pattern still matches itself
		{"[", "x", false}, // and nothing else
	} {
		if got := MatchAlias(tt.pattern, tt.s); got != tt.want {
			t.Errorf("MatchAlias(%q, %q) = %v; want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}
