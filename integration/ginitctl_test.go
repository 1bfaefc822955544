package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
