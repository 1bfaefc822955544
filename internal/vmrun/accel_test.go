package vmrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChooseAccel(t *testing.T) {
	dir := t.TempDir()
	kvm := filepath.Join(dir, "kvm")
	if err := os.WriteFile(kvm, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hangs := errors.New("probe kvm: no boot within 3s")
	for _, tc := range []struct {
		name, want, kvmDev string
		probe              error
		cached             string // the cache file's content before
		bootID             string
		accel              string
		probes             int
		note               bool
	}{
		{name: "tcg asked", want: "tcg", kvmDev: kvm, accel: "tcg"},
		{name: "kvm asked", want: "kvm", kvmDev: kvm, accel: "kvm"},
		{name: "auto without /dev/kvm", want: "auto", kvmDev: filepath.Join(dir, "none"), accel: "tcg"},
		{name: "auto, KVM boots", want: "auto", kvmDev: kvm, accel: "kvm", probes: 1},
		{name: "auto, KVM hangs", want: "auto", kvmDev: kvm, probe: hangs, accel: "tcg", probes: 1, note: true},
		{name: "auto, cached", want: "auto", kvmDev: kvm, cached: `{"boot_id":"b1","accel":"tcg"}`, accel: "tcg"},
		{name: "auto, cached by another boot", want: "auto", kvmDev: kvm, cached: `{"boot_id":"b0","accel":"tcg"}`, accel: "kvm", probes: 1},
		{name: "auto, cache unreadable", want: "auto", kvmDev: kvm, cached: `{`, accel: "kvm", probes: 1},
		{name: "auto, no boot id", want: "auto", kvmDev: kvm, cached: `{"boot_id":"","accel":"tcg"}`, bootID: "-", accel: "kvm", probes: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "state", "accel.json")
			if tc.cached != "" {
				os.MkdirAll(filepath.Dir(cache), 0o700)
				os.WriteFile(cache, []byte(tc.cached), 0o600)
			}
			boot := "b1"
			if tc.bootID == "-" {
				boot = ""
			}
			probes := 0
			c := accelChooser{cache: cache, bootID: boot, kvmDev: tc.kvmDev,
				probe: func(context.Context) error { probes++; return tc.probe }}
			accel, note, err := c.choose(t.Context(), tc.want)
			if err != nil || accel != tc.accel || probes != tc.probes || (note != "") != tc.note {
				t.Fatalf("choose(%s) = %q, %q, %v after %d probes; want %q after %d probes, note %v",
					tc.want, accel, note, err, probes, tc.accel, tc.probes, tc.note)
			}
			if tc.probes == 0 || boot == "" {
				return
			}
			// The answer is cached: the next run does not probe.
			again, _, err := c.choose(t.Context(), tc.want)
			if err != nil || again != accel || probes != tc.probes {
				t.Errorf("second choose(%s) = %q, %v after %d probes; want %q from the cache", tc.want, again, err, probes, accel)
			}
		})
	}
}

func TestChooseAccelErrors(t *testing.T) {
	c := accelChooser{cache: filepath.Join(t.TempDir(), "accel.json"), bootID: "b", kvmDev: filepath.Join(t.TempDir(), "none")}
	if _, _, err := c.choose(t.Context(), "xen"); err == nil || err.Error() != `--accel "xen": want kvm, tcg or auto` {
		t.Errorf("choose(xen) = %v; want the values named", err)
	}
	if _, _, err := c.choose(t.Context(), "kvm"); err == nil || !strings.HasPrefix(err.Error(), "--accel kvm: open ") {
		t.Errorf("choose(kvm) without /dev/kvm = %v; want the device's error", err)
	}
}
