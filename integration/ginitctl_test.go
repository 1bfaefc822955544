package integration

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// buildGinitctl builds the front door into dir.
func (a Artifacts) buildGinitctl(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ginitctl")
	cmd := exec.Command("go", "build", "-o", bin, "./cmds/ginitctl")
	cmd.Dir = a.Repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ginitctl: %v\n%s", err, out)
	}
	return bin
}

// ginitctl run boots an image as docker run would run it: --env-file and
// -e values reach the workload (and are neither on /proc/cmdline nor in
// ginitctl's or QEMU's argv), -w and CMD apply, the workload's full status
// comes back, --rm leaves no state.
func TestGinitctlRun(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	tmp := t.TempDir()
	ctl := a.buildGinitctl(t, tmp)
	root := probeRoot(t, a, map[string]any{"Entrypoint": []string{"/app/probe"}, "Cmd": []string{"args", "image"}})
	const secret = "s3cret-from-the-env-file-0815"
	envFile := filepath.Join(tmp, "secrets.env")
	if err := os.WriteFile(envFile, []byte("# the service's token\nAPI_TOKEN="+secret+"\nMODE=file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(tmp, "state")
	run := func(args ...string) (string, int) {
		t.Helper()
		argv := append([]string{"run", "--state", state, "--kernel", a.Kernel, "--initrd", a.Initrd}, args...)
		cmd := exec.Command(ctl, argv...)
		cmd.Env = append(os.Environ(), "FROM_SHELL=shell-value")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("ginitctl %q: %v", argv, err)
		}
		if strings.Contains(strings.Join(argv, " "), secret) {
			t.Fatalf("the test put the secret on ginitctl's argv")
		}
		return string(out), cmd.ProcessState.ExitCode()
	}

	out, code := run("--rm", "--env-file", envFile, "-e", "MODE=flag", "-e", "FROM_SHELL", "-w", "/srv/run",
		"dir:"+root, "env")
	for _, want := range []string{"probe: env API_TOKEN=" + secret, "probe: env MODE=flag", "probe: env FROM_SHELL=shell-value", "cwd=/srv/run"} {
		if !strings.Contains(out, want) {
			t.Errorf("ginitctl run output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, secret); n != 1 {
		t.Errorf("output shows the secret %d times; want once, from probe env (not /proc/cmdline, not ginit's log):\n%s", n, out)
	}
	if code != 0 {
		t.Errorf("ginitctl run ... env: status %d; want 0:\n%s", code, out)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "vms", "*")); len(left) != 0 {
		t.Errorf("--rm left %v", left)
	}

	// A status above 127 comes back whole, where QEMU's own exit status
	// keeps 7 bits; --entrypoint replaces the image's.
	out, code = run("--entrypoint", "/app/probe", "dir:"+root, "write", "/tmp/x", "hi", "255")
	if code != 255 {
		t.Errorf("ginitctl run ... write ... 255: status %d; want 255:\n%s", code, out)
	}
	left, _ := filepath.Glob(filepath.Join(state, "vms", "*", "run.json"))
	if len(left) != 1 {
		t.Fatalf("without --rm: run documents %v; want one", left)
	}
	if st, err := os.Stat(left[0]); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("run document %s: %v, %v; want mode 0600", left[0], st.Mode(), err)
	}

	if out, code := run("dir:" + filepath.Join(tmp, "missing")); code != 125 || !strings.Contains(out, "ginitctl: disk from dir:") {
		t.Errorf("ginitctl run dir:missing = %d, %q; want 125 and one line naming the source", code, out)
	}
}

// Ctrl-C to a foreground run stops the VM as docker run stops a
// container: the image's StopSignal reaches the workload, and its status
// comes back.
func TestGinitctlCtrlC(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	tmp := t.TempDir()
	ctl := a.buildGinitctl(t, tmp)
	root := probeRoot(t, a, map[string]any{"Entrypoint": []string{"/app/probe", "stopwait", "/stopped.txt"}, "StopSignal": "SIGUSR1"})
	state := filepath.Join(tmp, "state")
	cmd := exec.Command(ctl, "run", "--state", state, "--kernel", a.Kernel, "--initrd", a.Initrd, "--append", "ginit.debug", "dir:"+root)
	out, code := runCtrlC(t, cmd)
	if code != 0 || !strings.Contains(out, "ginit: power button pressed") {
		t.Errorf("ginitctl after Ctrl-C: status %d; want 0 and the power button line:\n%s", code, out)
	}
	disks, _ := filepath.Glob(filepath.Join(state, "vms", "*", "disk.img"))
	if len(disks) != 1 {
		t.Fatalf("disks %v; want one", disks)
	}
	if got := DebugfsCat(t, disks[0], "/stopped.txt"); got != "stopped by SIGUSR1\n" {
		t.Errorf("/stopped.txt = %q; want the image's StopSignal, SIGUSR1", got)
	}
}

// runCtrlC runs a ginitctl run of a workload that waits for its stop
// signal (probe stopwait, with ginit.debug), presses Ctrl-C once it waits
// and the power button's driver is there, and returns the output and
// ginitctl's status.
func runCtrlC(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// A process group of its own, which Ctrl-C signals whole, as a
	// terminal does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	ready, pressed := 0, false
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		// The power button's driver loads after the workload starts.
		if strings.Contains(line, "probe: waiting for a stop signal") || strings.Contains(line, "ginit: watching the power button") {
			ready++
		}
		if ready == 2 && !pressed {
			pressed = true
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
		}
	}
	err := <-done
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ginitctl: %v", err)
	}
	if !pressed {
		t.Fatalf("the workload never waited for its stop signal:\n%s", out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}
