package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// The boot pass loads the boot buses' drivers and the listed modules that
// no device can ask for; a listed module with an alias waits for its
// device; the rest pass loads the other buses' drivers.
func TestPolicy(t *testing.T) {
	root := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mods := "lib/modules/6.1.0-test/"
	write(mods+"modules.dep", "kernel/a/virtio_blk.ko:\nkernel/a/button.ko:\nkernel/fs/fuse.ko:\nkernel/a/e1000.ko:\nkernel/a/ghost.ko:\n")
	write(mods+"modules.alias", "alias virtio:d00000002v* virtio_blk\nalias acpi*:LNXPWRBN:* button\nalias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\n")
	write("etc/modules-load.d/ginit.conf", "virtio_blk\nbutton\nfuse\ne1000\n")
	write("sys/bus/virtio/devices/virtio0/modalias", "virtio:d00000002v00001AF4")
	write("sys/bus/acpi/devices/LNXPWRBN:00/modalias", "acpi:LNXPWRBN:")

	p, warns, err := NewPolicy(root, "6.1.0-test", []string{"ghost"})
	if err != nil || len(warns) > 0 {
		t.Fatalf("NewPolicy = %v, %v; want no error", warns, err)
	}
	var loaded []string
	p.loader.insert = func(path string) error {
		loaded = append(loaded, Name(path))
		return nil
	}
	if res := p.Boot(); len(res.Errors) > 0 {
		t.Errorf("Boot() errors %v", res.Errors)
	}
	// ghost was asked for by name, fuse has no alias; e1000 has an alias
	// and no device, button is not on a boot bus.
	if got, want := slices.Sorted(slices.Values(loaded)), []string{"fuse", "ghost", "virtio_blk"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Boot() loaded %q; want %q", got, want)
	}
	loaded = nil
	p.Rest()
	if want := []string{"button"}; !reflect.DeepEqual(loaded, want) {
		t.Errorf("Rest() loaded %q; want %q", loaded, want)
	}
	if _, _, err := NewPolicy(root, "no-such-release", nil); err == nil {
		t.Errorf("NewPolicy(missing release) succeeded; want an error")
	}
}
