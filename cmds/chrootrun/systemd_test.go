package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// TestSystemd boots a Debian root with systemd under chrootrun until
// `systemctl is-system-running` answers, then ends it from inside with
// systemctl poweroff and systemctl reboot, and from outside with SIGTERM
// (which becomes SIGRTMIN+3, systemd's halt), and checks what chrootrun
// reports. The root comes from CHROOTRUN_SYSTEMD_ROOT (make test-systemd),
// or is made with debootstrap under GINIT_VM_TESTS=1 (make test).
func TestSystemd(t *testing.T) {
	needRoot(t)
	root := os.Getenv("CHROOTRUN_SYSTEMD_ROOT")
	if root == "" {
		if !testenv.Strict() {
			testenv.Missing(t, "needs a Debian root with systemd: run make test-systemd (make test makes one too)")
		}
		var err error
		if root, err = filepath.Abs("../../build/systemd/root"); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("../../scripts/test-systemd.sh", "--root-only", root).CombinedOutput(); err != nil {
			t.Fatalf("make the systemd root: %v\n%s", err, out)
		}
	}
	t.Parallel()
	stateDir := t.TempDir()
	for _, tc := range []struct {
		how  string // systemctl's verb, or "SIGTERM" to chrootrun
		code int
		says string
	}{
		{"poweroff", 0, ": poweroff"},
		{"reboot", exitReboot, ": reboot"},
		{"SIGTERM", 0, ": poweroff"},
	} {
		name := "systemd-" + strings.ToLower(tc.how)
		var stderr bytes.Buffer
		cmd := exec.Command(chrootrunBin, "--name", name, "--state", stateDir, "--hostname", "systemd-test", root)
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		kill := func() {
			cmd.Process.Kill()
			<-done
		}

		status := waitRunning(t, stateDir, name)
		if status == "" {
			kill()
			t.Fatalf("%s: systemd never answered running or degraded; chrootrun said %s", name, stderr.String())
		}
		up := time.Since(start)
		if status == "degraded" {
			failed := chrootrun(t, "exec", "--state", stateDir, name, "systemctl", "--failed", "--no-legend")
			t.Logf("%s: degraded: %s", name, failed.stdout)
		}

		stop := time.Now()
		if tc.how == "SIGTERM" {
			cmd.Process.Signal(syscall.SIGTERM)
		} else {
			// systemctl may lose its connection as systemd goes down: its
			// status says nothing.
			chrootrun(t, "exec", "--state", stateDir, name, "systemctl", tc.how)
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(90 * time.Second):
			kill()
			t.Fatalf("%s: still running 90s after %s; chrootrun said %s", name, tc.how, stderr.String())
		}
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if code != tc.code || !strings.Contains(stderr.String(), tc.says) {
			t.Errorf("%s: status %d, chrootrun said %q; want %d and %q", tc.how, code, stderr.String(), tc.code, tc.says)
		}
		t.Logf("%s: up (%s) in %v, down in %v", tc.how, status, up.Round(time.Millisecond), time.Since(stop).Round(time.Millisecond))
	}
}

// waitRunning asks the instance's systemd how it is until it says running
// or degraded, and returns that, or "" after a minute.
func waitRunning(t *testing.T, stateDir, name string) string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(stateDir, name+".json")); err != nil {
			continue
		}
		r := chrootrun(t, "exec", "--state", stateDir, name, "systemctl", "is-system-running")
		switch s := strings.TrimSpace(r.stdout); s {
		case "running", "degraded":
			return s
		}
	}
	return ""
}
