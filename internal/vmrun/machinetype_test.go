package vmrun

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/mkuimage/cpio"

	"github.com/ginit-dev/ginit/internal/imagebuild"
	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// The default is microvm only where all it needs is there; an explicit
// type QEMU lacks, or a microvm that cannot boot, is one clear error.
func TestChooseMachine(t *testing.T) {
	const khz = 2694890
	all := []qemu.Machine{qemu.MicroVM, qemu.PC, qemu.Q35}
	for _, tt := range []struct {
		name      string
		want      qemu.Machine
		accel     string
		offered   []qemu.Machine
		tsc       int
		has, know bool
		got       qemu.Machine
		err       string
	}{
		{"default", "", AccelTCG, all, khz, true, true, qemu.MicroVM, ""},
		{"default under KVM, no TSC rate", "", AccelKVM, all, 0, true, true, qemu.MicroVM, ""},
		{"default under TCG, no TSC rate", "", AccelTCG, all, 0, true, true, qemu.PC, ""},
		{"default, QEMU without microvm", "", AccelTCG, []qemu.Machine{qemu.PC}, khz, true, true, qemu.PC, ""},
		{"default, an initramfs without virtio_mmio", "", AccelTCG, all, khz, false, true, qemu.PC, ""},
		{"default, an initramfs not read", "", AccelTCG, all, khz, false, false, qemu.PC, ""},
		{"pc", qemu.PC, AccelTCG, all, khz, true, true, qemu.PC, ""},
		{"q35 without virtio_mmio", qemu.Q35, AccelTCG, all, 0, false, true, qemu.Q35, ""},
		{"microvm", qemu.MicroVM, AccelTCG, all, khz, false, false, qemu.MicroVM, ""},
		{"q35 QEMU lacks", qemu.Q35, AccelTCG, []qemu.Machine{qemu.PC}, khz, true, true, "", "--machine q35: qemu-system-x86_64 does not offer it"},
		{"microvm, no TSC rate", qemu.MicroVM, AccelTCG, all, 0, true, true, "", "--machine microvm under TCG: its kernel needs the host's TSC rate"},
		{"microvm, no virtio_mmio", qemu.MicroVM, AccelTCG, all, khz, false, true, "", "--machine microvm: the initramfs has no virtio_mmio driver"},
	} {
		c := machineChooser{
			offers: func(m qemu.Machine) (bool, error) {
				for _, o := range tt.offered {
					if o == m {
						return true, nil
					}
				}
				return false, nil
			},
			tscKHz:     tt.tsc,
			virtioMMIO: func() (bool, bool) { return tt.has, tt.know },
		}
		got, err := c.choose(tt.want, tt.accel)
		if got != tt.got || (err == nil) != (tt.err == "") || (err != nil && !strings.HasPrefix(err.Error(), tt.err)) {
			t.Errorf("%s: choose = %q, %v; want %q, %q", tt.name, got, err, tt.got, tt.err)
		}
	}
}

// The module is found as a file or in modules.builtin; a compressed or
// missing initramfs is not read.
func TestInitrdModule(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, recs ...cpio.Record) string {
		var b bytes.Buffer
		if err := imagebuild.WriteArchive(&b, recs); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := func(name, data string) cpio.Record {
		return cpio.StaticRecord([]byte(data), cpio.Info{Name: name, Mode: cpio.S_IFREG | 0o644})
	}
	const mods = "lib/modules/6.1.0/"
	for _, tt := range []struct {
		name, path string
		has, known bool
	}{
		{"a .ko", write("ko.cpio", file(mods+"kernel/drivers/virtio/virtio_mmio.ko", "elf")), true, true},
		{"an .ko.xz", write("xz.cpio", file(mods+"kernel/drivers/virtio/virtio_mmio.ko.xz", "xz")), true, true},
		{"built in", write("builtin.cpio", file(mods+"modules.builtin", "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_mmio.ko\n")), true, true},
		{"without", write("without.cpio", file(mods+"kernel/drivers/virtio/virtio_pci.ko", "elf"), file(mods+"modules.builtin", "kernel/fs/ext4/ext4.ko\n")), false, true},
		{"compressed", filepath.Join(dir, "x.cpio.xz"), false, false},
		{"missing", filepath.Join(dir, "none"), false, false},
	} {
		if tt.name == "compressed" {
			if err := os.WriteFile(tt.path, []byte("\xfd7zXZ\x00\x00 not a newc archive"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if has, known := initrdModule(tt.path, "virtio_mmio"); has != tt.has || known != tt.known {
			t.Errorf("%s: initrdModule = %v, %v; want %v, %v", tt.name, has, known, tt.has, tt.known)
		}
	}
}

// QEMU's machine types are asked once per binary.
func TestMachineTypesCached(t *testing.T) {
	testenv.NeedTools(t, QEMUSystem)
	s := State(t.TempDir())
	types, err := s.machineTypes(t.Context())
	if err != nil || len(types) == 0 {
		t.Fatalf("machineTypes = %v, %v", types, err)
	}
	b, err := os.ReadFile(s.MachineCache())
	if err != nil || !strings.Contains(string(b), `"pc"`) {
		t.Fatalf("cache %s = %q, %v; want the types", s.MachineCache(), b, err)
	}
	// A cache the binary matches is believed.
	if err := os.WriteFile(s.MachineCache(), bytes.Replace(b, []byte(`"pc"`), []byte(`"cached-only"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if types, _ := s.machineTypes(t.Context()); !strings.Contains(strings.Join(types, " "), "cached-only") {
		t.Errorf("machineTypes = %v; want the cached list", types)
	}
}
