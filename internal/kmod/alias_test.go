package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"pci:v00001AF4d00001000sv*sd*bc*sc*i*", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", true},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00", false},
		{"virtio:d00000002v*", "virtio:d00000002v00001AF4", true},
		{"virtio:d00000002v*", "virtio:d00000001v00001AF4", false},
		{"acpi*:LNXPWRBN:*", "acpi:LNXPWRBN:", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"x[0-9]y", "x7y", true},
		{"x[!0-9]y", "x7y", false},
		{"x[^a]y", "xby", true},
		{"x[]]y", "x]y", true},
		{"x[ab", "x[ab", true},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"*", "", true},
		{"**a", "bba", true},
		{"*a*b*c", "xaybzc", true},
		{"*a*b*c", "xaybz", false},
	} {
		if got := Glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v; want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func FuzzGlob(f *testing.F) {
	f.Add("pci:v*d*", "pci:v1d2")
	f.Add("[a-", "[a-")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		_ = Glob(pattern, s)
		// Without special characters a pattern matches exactly itself.
		if !strings.ContainsAny(pattern, `*?[\`) && Glob(pattern, s) != (pattern == s) {
			t.Fatalf("Glob(%q, %q) = %v; want %v", pattern, s, Glob(pattern, s), pattern == s)
		}
		if !strings.ContainsAny(s, `*?[\`) && !Glob(s, s) {
			t.Fatalf("Glob(%q, itself) = false", s)
		}
	})
}

func TestMatchAndDevices(t *testing.T) {
	aliases := ParseAlias(strings.NewReader(`# comment
alias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_pci
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias virtio:d00000001v* virtio_net
alias acpi*:LNXPWRBN:* button
`))
	if got := Match(aliases, "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"); !reflect.DeepEqual(got, []string{"virtio_pci"}) {
		t.Errorf("Match(virtio pci device) = %q; want [virtio_pci]", got)
	}
	sys := t.TempDir()
	dev := func(bus, name, alias string, driver bool) {
		dir := filepath.Join(sys, "bus", bus, "devices", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "modalias"), []byte(alias+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
		if driver {
			if err := os.Symlink("/sys/bus/x/drivers/y", filepath.Join(dir, "driver")); err != nil {
				t.Fatal(err)
			}
		}
	}
	dev("virtio", "virtio0", "virtio:d00000001v00001AF4", true)
	dev("virtio", "virtio1", "virtio:d00000002v00001AF4", false)
	dev("acpi", "LNXPWRBN:00", "acpi:LNXPWRBN:", false)
	dev("platform", "LNRO0005:00", "acpi:LNRO0005:", true)
	// Input devices are class devices, not on a bus.
	input := filepath.Join(sys, "class/input/input0")
	if err := os.MkdirAll(input, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(input, "modalias"), []byte("input:b0019v0000p0001e0000-e0,1,k74,ramlsfw\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	if got := Devices(sys, BootBus); len(got) != 3 || got[0].Modalias != "acpi:LNRO0005:" || got[1].Modalias != "virtio:d00000001v00001AF4" {
		t.Errorf("Devices(BootBus) = %+v; want the virtio-mmio transport and the two virtio devices", got)
	}
	got := Devices(sys, nil)
	if len(got) != 5 || got[4].Modalias != "input:b0019v0000p0001e0000-e0,1,k74,ramlsfw" || got[3].Modalias != "virtio:d00000002v00001AF4" || got[3].HasDriver || !got[2].HasDriver {
		t.Errorf("Devices = %+v; want the five devices with their driver state", got)
	}
}

// Loading the transport driver brings the devices behind it, and a second
// round loads their drivers; devices nobody drives are reported. The
// transport is PCI (virtio_pci) on pc and q35, and the platform bus
// (virtio_mmio, ACPI LNRO0005) on microvm.
func TestColdplugRounds(t *testing.T) {
	for _, tt := range []struct {
		name      string
		bus, dev  string // where the transport's device is
		modalias  string
		transport string // its driver
		alias     string // the driver's modules.alias line
	}{
		{"pci", "pci", "0000:00:02.0", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
			"virtio_pci", "alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci"},
		{"mmio", "platform", "LNRO0005:00", "acpi:LNRO0005:",
			"virtio_mmio", "alias acpi*:LNRO0005:* virtio_mmio"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sys := filepath.Join(dir, "sys")
			modDep := dep + "kernel/drivers/virtio/" + tt.transport + ".ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n"
			if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(modDep), 0o644); err != nil {
				t.Fatal(err)
			}
			addDev := func(bus, name, alias string) {
				d := filepath.Join(sys, "bus", bus, "devices", name)
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, "modalias"), []byte(alias), 0o444); err != nil {
					t.Fatal(err)
				}
			}
			addDev(tt.bus, tt.dev, tt.modalias)
			addDev("pci", "0000:00:00.0", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00")
			addDev("pci", "0000:00:05.0", "pci:v0000DEADd0000BEEFsv00000000sd00000000bc02sc00i00")
			l, err := NewLoader(dir)
			if err != nil {
				t.Fatal(err)
			}
			l.insert = func(path string) error {
				if Name(path) == tt.transport {
					addDev("virtio", "virtio0", "virtio:d00000002v00001AF4")
				}
				return nil
			}
			aliases := ParseAlias(strings.NewReader(tt.alias + "\nalias virtio:d00000002v* virtio_blk\n"))
			res := l.Coldplug(sys, aliases, []string{"virtio_net"}, BootBus)
			want := []string{"failover", "net_failover", "virtio", "virtio_blk", "virtio_net", tt.transport, "virtio_ring"}
			sort.Strings(want)
			if !reflect.DeepEqual(res.Loaded, want) || len(res.Errors) != 0 {
				t.Errorf("Coldplug loaded %q, errors %v; want %q", res.Loaded, res.Errors, want)
			}
			if len(res.Orphaned) != 1 || !strings.Contains(res.Orphaned[0].Modalias, "DEAD") {
				t.Errorf("Coldplug orphaned = %+v; want only the unknown DEAD:BEEF device (not the bridge)", res.Orphaned)
			}
		})
	}
}
