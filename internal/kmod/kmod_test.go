package kmod

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const dep = `kernel/drivers/net/virtio_net.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/block/virtio-blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/block/virtio-blk.ko": "virtio_blk",
		"e1000e.ko.xz":                       "e1000e",
		"snd-hda-intel":                      "snd_hda_intel",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestParseDep(t *testing.T) {
	deps, err := ParseDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	if got := deps["virtio_blk"]; got.Path != "kernel/drivers/block/virtio-blk.ko" || len(got.Depends) != 2 {
		t.Errorf("deps[virtio_blk] = %+v; want its path and 2 dependencies", got)
	}
	if _, err := ParseDep(strings.NewReader("no colon here\n")); err == nil {
		t.Errorf("ParseDep(bad line) succeeded; want an error")
	}
}

// recordingLoader is a Loader over files (name to contents) in a temporary
// module directory whose inserts record the module names in the order
// they are loaded, instead of loading anything.
func recordingLoader(t *testing.T, files map[string]string) (*Loader, *[]string) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := NewLoader(dir)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	l.insert = func(path string) error {
		order = append(order, Name(path))
		return nil
	}
	return l, &order
}

// Dependencies load before the modules that need them, each once, and
// builtin modules are not loaded at all.
func TestLoadOrder(t *testing.T) {
	l, order := recordingLoader(t, map[string]string{"modules.dep": dep, "modules.builtin": "kernel/fs/ext4/ext4.ko\n"})
	for _, m := range []string{"virtio_net", "virtio-blk", "ext4"} {
		if err := l.Load(m); err != nil {
			t.Fatalf("Load(%s): %v", m, err)
		}
	}
	want := []string{"virtio_ring", "virtio", "failover", "net_failover", "virtio_net", "virtio_blk"}
	if !reflect.DeepEqual(*order, want) {
		t.Errorf("load order = %q; want %q", *order, want)
	}
	if err := l.Load("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(nosuch) = %v; want ErrNotFound", err)
	}
}

// LoadInOrder loads in the order given, dependencies first, and goes on
// past a module that fails.
func TestLoadInOrder(t *testing.T) {
	l, order := recordingLoader(t, map[string]string{"modules.dep": dep})
	errs := l.LoadInOrder([]string{"virtio_blk", "nosuch", "failover"})
	if want := []string{"virtio_ring", "virtio", "virtio_blk", "failover"}; !reflect.DeepEqual(*order, want) {
		t.Errorf("LoadInOrder order = %q; want %q", *order, want)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrNotFound) {
		t.Errorf("LoadInOrder errors = %v; want one ErrNotFound for nosuch", errs)
	}
}

// A host's second archive adds modules through ExtraDep; they may need the
// image's.
func TestExtraDep(t *testing.T) {
	extra := "kernel/fs/fuse/fuse.ko:\nkernel/fs/fuse/virtiofs.ko: kernel/fs/fuse/fuse.ko kernel/drivers/virtio/virtio_ring.ko\n"
	l, order := recordingLoader(t, map[string]string{"modules.dep": dep, ExtraDep: extra})
	if err := l.Load("virtiofs"); err != nil {
		t.Fatalf("Load(virtiofs): %v", err)
	}
	if want := []string{"fuse", "virtio_ring", "virtiofs"}; !reflect.DeepEqual(*order, want) {
		t.Errorf("load order = %q; want %q", *order, want)
	}
	if !l.Has("virtio_net") {
		t.Errorf("Has(virtio_net) = false; the image's modules.dep was lost")
	}
}

func TestReadList(t *testing.T) {
	got := ReadList(strings.NewReader("# comment\nvirtio_pci\n\n; other\n  e1000 \n"))
	if want := []string{"virtio_pci", "e1000"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ReadList = %q; want %q", got, want)
	}
}
