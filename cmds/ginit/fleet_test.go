package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/shutdown"
)

// A failed boot on a fleet: the image's parameters (the linuxboot image's
// ginit.onerror=reboot) or the host's run document make it reboot after a
// delay instead of starting a shell; the kernel's command line wins over
// both, the run document over the image.
func TestFleetOnError(t *testing.T) {
	image := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(image, []byte("ginit.onerror=reboot\nginit.rebootdelay=30s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "none")
	rootErr := errors.New("root /dev/vdz: not found")
	docReboot := []byte(`{"version":1,"onerror":"reboot"}`)
	docShell := []byte(`{"version":1,"onerror":"shell"}`)
	for _, tc := range []struct {
		name       string
		imageFile  string
		m          *fakeMachine
		wantAction shutdown.Action
		wantShells int
		wantPause  string // the pause step, "" for none
	}{
		{"default: rescue shell", missing, &fakeMachine{rootErr: rootErr}, shutdown.PowerOff, 1, ""},
		{"image: reboot after its delay", image, &fakeMachine{rootErr: rootErr}, shutdown.Reboot, 0, "pause 30s"},
		{"kernel over image", image, &fakeMachine{cmdline: "ginit.onerror=shell", rootErr: rootErr}, shutdown.PowerOff, 1, ""},
		{"kernel's delay over image's", image, &fakeMachine{cmdline: "ginit.rebootdelay=2s", rootErr: rootErr}, shutdown.Reboot, 0, "pause 2s"},
		{"run document: reboot after the default delay", missing, &fakeMachine{runDoc: docReboot, rootErr: rootErr}, shutdown.Reboot, 0, "pause 10s"},
		{"run document over image", image, &fakeMachine{runDoc: docShell, rootErr: rootErr}, shutdown.PowerOff, 1, ""},
		{"kernel over run document", missing, &fakeMachine{cmdline: "ginit.onerror=poweroff", runDoc: docReboot, rootErr: rootErr}, shutdown.PowerOff, 0, ""},
		{"no delay without a failure", image, &fakeMachine{cmdline: "ginit.onexit=reboot", proc: newProcess(0)}, shutdown.Reboot, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imageCmdline = tc.imageFile
			defer func() { imageCmdline = "/etc/ginit/cmdline" }()
			m, log := runBoot(t, tc.m)
			if m.action != tc.wantAction || m.shells != tc.wantShells {
				t.Errorf("ended in %v with %d shells; want %v, %d (steps %q)", m.action, m.shells, tc.wantAction, tc.wantShells, m.steps)
			}
			paused := slices.IndexFunc(m.steps, func(s string) bool { return len(s) > 5 && s[:5] == "pause" })
			switch {
			case tc.wantPause == "" && paused >= 0:
				t.Errorf("steps %q; want no pause", m.steps)
			case tc.wantPause != "" && (paused < 0 || m.steps[paused] != tc.wantPause):
				t.Errorf("steps %q; want %q", m.steps, tc.wantPause)
			case tc.wantPause != "" && !strings.Contains(log, "rebooting in "+tc.wantPause[len("pause "):]):
				t.Errorf("log %q; want the delay shown", log)
			}
		})
	}
}
