package shutdown

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestIsKernelThread(t *testing.T) {
	for _, tt := range []struct {
		stat        string
		kthread, ok bool
	}{
		{"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0", true, true},
		{"88 (my (odd) app) S 1 88 88 34816 88 4194560 10", false, true},
		{"90 (zombie) Z 1 90 90 0 -1 4227084 0", false, true},
		{"garbage", false, false},
	} {
		k, ok := isKernelThread(tt.stat)
		if k != tt.kthread || ok != tt.ok {
			t.Errorf("isKernelThread(%q) = %v, %v; want %v, %v", tt.stat, k, ok, tt.kthread, tt.ok)
		}
	}
}

func TestSession(t *testing.T) {
	for _, tt := range []struct {
		stat string
		sid  int
		ok   bool
	}{
		{"88 (my (odd) app) S 1 88 77 34816 88 4194560 10", 77, true},
		{"90 (sh) S 1 90", 0, false},
		{"garbage", 0, false},
	} {
		sid, ok := sessionOf(tt.stat)
		if sid != tt.sid || ok != tt.ok {
			t.Errorf("sessionOf(%q) = %d, %v; want %d, %v", tt.stat, sid, ok, tt.sid, tt.ok)
		}
	}
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "42"), 0o755)
	os.WriteFile(filepath.Join(proc, "42", "stat"), []byte("42 (sh) S 1 42 40 0 -1 4194560 0"), 0o644)
	if got := Session(proc, 42); got != 40 {
		t.Errorf("Session(42) = %d; want 40", got)
	}
	if got := Session(proc, 43); got != 0 {
		t.Errorf("Session(gone) = %d; want 0", got)
	}
}

func TestUserProcesses(t *testing.T) {
	proc := t.TempDir()
	for pid, stat := range map[string]string{
		"1":    "1 (ginit) S 0 1 1 0 -1 4194560 0",
		"2":    "2 (kthreadd) S 0 0 0 0 -1 2129984 0",
		"77":   "77 (server) S 1 77 77 0 -1 4194560 0",
		"self": "x",
	} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := UserProcesses(proc); !reflect.DeepEqual(got, []int{77}) {
		t.Errorf("UserProcesses = %v; want [77]", got)
	}
}

func TestOnQEMU(t *testing.T) {
	for _, tt := range []struct {
		name   string
		vendor string // DMI sys_vendor; empty: no DMI (microvm)
		fwcfg  bool   // ACPI QEMU0002:00
		want   bool
	}{
		{"pc", "QEMU\n", true, true},
		{"microvm", "", true, true},
		{"hardware", "Dell Inc.\n", false, false},
		{"no DMI, no fw_cfg", "", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sys := t.TempDir()
			if tt.vendor != "" {
				if err := os.MkdirAll(filepath.Join(sys, "class/dmi/id"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(sys, "class/dmi/id/sys_vendor"), []byte(tt.vendor), 0o444); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fwcfg {
				if err := os.MkdirAll(filepath.Join(sys, "bus/acpi/devices/QEMU0002:00"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if got := onQEMU(sys); got != tt.want {
				t.Errorf("onQEMU(%s) = %v; want %v", tt.name, got, tt.want)
			}
		})
	}
}
