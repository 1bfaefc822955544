package integration

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
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

// overlayCat reads path in the file system of a VM's qcow2 overlay, as its
// chain (the overlay over its base) shows it.
func overlayCat(t *testing.T, overlay, path string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "flat.img")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", overlay, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", overlay, err, out)
	}
	return DebugfsCat(t, raw, path)
}

// ctl runs the built ginitctl on one state directory.
type ctl struct {
	bin, state string
	a          Artifacts
}

// run runs ginitctl SUB --state ... ARGS (run also gets the kernel and
// initramfs) and returns its standard output, error and status.
func (c ctl) run(t *testing.T, sub string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	argv := []string{sub, "--state", c.state}
	if sub == "run" {
		argv = append(argv, "--kernel", c.a.Kernel, "--initrd", c.a.Initrd)
	}
	cmd := exec.Command(c.bin, append(argv, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("ginitctl %q: %v", argv, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// await runs ginitctl SUB ARGS until its output has want; a VM boots in
// seconds to a minute under TCG on a loaded machine.
func (c ctl) await(t *testing.T, want, sub string, args ...string) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if out, _, _ = c.run(t, sub, args...); strings.Contains(out, want) {
			return
		}
	}
	t.Fatalf("ginitctl %s %v never showed %q:\n%s", sub, args, want, out)
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// A VM's life through ginitctl: run -d returns once QEMU runs and ps,
// logs, stop, inspect and rm reach the VM by its name; a second run of the
// image, at the same time, reuses the cached base (no second conversion)
// and neither VM sees the other's writes; --rm leaves nothing; the
// workload's statuses come back whole (137 from stop, 3 from a run); a
// QEMU killed with SIGKILL shows as dead; a taken name is refused with 125
// and nothing made; prune empties the cache.
func TestGinitctlLifecycle(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs", "qemu-img")
	tmp := t.TempDir()
	c := ctl{bin: a.buildGinitctl(t, tmp), state: filepath.Join(tmp, "state"), a: a}
	root := probeRoot(t, a, map[string]any{"Entrypoint": []string{"/app/probe"}})
	image := "dir:" + root

	out, errOut, code := c.run(t, "run", "-d", "--name", "a", image, "steps", "write=/mark-a=from a", "stopwait=/stopped", "exit=137")
	if code != 0 || out != "a\n" || !strings.Contains(errOut, "converting") {
		t.Fatalf("run -d --name a = %d, %q, %q; want 0, the name, and a conversion", code, out, errOut)
	}
	bases, _ := filepath.Glob(filepath.Join(c.state, "images", "sha256-*", "disk.img"))
	if len(bases) != 1 {
		t.Fatalf("bases after the first run: %v; want one", bases)
	}
	base, ino := bases[0], inode(t, bases[0])
	// -d returns once the workload has started, as ginit says on the
	// control channel after it logged the start.
	if log, _ := os.ReadFile(filepath.Join(c.state, "vms", "a", "console.log")); !strings.Contains(string(log), `starting ["/app/probe"`) {
		t.Errorf("run -d returned before ginit started the workload:\n%s", log)
	}
	c.await(t, "probe: waiting for a stop signal", "logs", "a")
	if out, _, _ := c.run(t, "ps"); !regexp.MustCompile(`(?m)^a\s+` + regexp.QuoteMeta(image) + `\s+running\s`).MatchString(out) {
		t.Errorf("ps while a runs:\n%s", out)
	}
	// exec on the control channel, of a VM on the default machine.
	if out, errOut, code := c.run(t, "exec", "a", "/app/probe", "args", "from exec"); code != 0 || out != "probe: arg[0]=\"from exec\"\n" {
		t.Errorf("exec a probe args = %d, %q, %q; want 0 and the argument back", code, out, errOut)
	}
	// More execs at once than the VM has serial ports: each marks that it
	// runs and waits for a gate that a last exec opens once all have
	// marked, so all run at once.
	var waiting sync.WaitGroup
	opener := []string{"exec", "a", "/app/probe", "steps"}
	for i := range qemu.ControlPorts + 2 {
		mark := fmt.Sprintf("/running-%d", i)
		opener = append(opener, "await="+mark)
		waiting.Add(1)
		go func() {
			defer waiting.Done()
			want := "probe: write " + mark + ": ok\nprobe: await /gate: ok\n"
			if out, errOut, code := c.run(t, "exec", "a", "/app/probe", "steps", "write="+mark+"=yes", "await=/gate"); code != 0 || out != want {
				t.Errorf("exec %d waiting at the gate = %d, %q, %q; want 0, %q", i, code, out, errOut, want)
			}
		}()
	}
	opener = append(opener, "write=/gate=open")
	if out, errOut, code := c.run(t, opener[0], opener[1:]...); code != 0 || !strings.HasSuffix(out, "probe: write /gate: ok\n") {
		t.Errorf("exec opening the gate = %d, %q, %q", code, out, errOut)
	}
	waiting.Wait()

	// b on pc: a boots on the default, microvm where the host allows it.
	out, errOut, code = c.run(t, "run", "--rm", "--machine", "pc", "--name", "b", image, "steps", "cat=/mark-a", "write=/mark-b=from b", "exit=3")
	if code != 3 || !strings.Contains(out, "probe: cat /mark-a: open /mark-a: no such file") || !strings.Contains(out, "probe: write /mark-b: ok") {
		t.Errorf("run --rm b ... steps: status %d; want 3, a's file unseen, its own written:\n%s%s", code, out, errOut)
	}
	if strings.Contains(errOut, "converting") || inode(t, base) != ino {
		t.Errorf("the second run converted the image again: %q", errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(c.state, "vms", "b")); len(left) != 0 {
		t.Errorf("--rm left %v", left)
	}
	if bases, _ := filepath.Glob(filepath.Join(c.state, "images", "sha256-*")); len(bases) != 1 {
		t.Errorf("images after the warm run: %v; want the one base", bases)
	}

	follow := exec.Command(c.bin, "logs", "--state", c.state, "-f", "a")
	var followed strings.Builder
	follow.Stdout = &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := c.run(t, "stop", "a"); code != 0 || out != "a: exited (137)\n" {
		t.Errorf("stop a = %d, %q, %q; want the workload's 137", code, out, errOut)
	}
	// logs -f ends by itself once the VM has.
	if err := follow.Wait(); err != nil || !strings.Contains(followed.String(), "probe: stopped by SIGTERM") {
		t.Errorf("logs -f a: %v; want the workload's last line:\n%s", err, followed.String())
	}
	if out, _, _ := c.run(t, "ps"); strings.Contains(out, "\na ") {
		t.Errorf("ps lists an ended VM:\n%s", out)
	}
	if out, _, _ := c.run(t, "ps", "-a"); !strings.Contains(out, "exited (137)") {
		t.Errorf("ps -a:\n%s", out)
	}
	out, _, code = c.run(t, "inspect", "a")
	var inspected []struct {
		ImageKey string   `json:"image_key"`
		Disks    []string `json:"disks"`
		QEMU     []string `json:"qemu"`
		State    struct {
			Phase string `json:"phase"`
			Exit  *int   `json:"exit"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &inspected); err != nil || code != 0 || len(inspected) != 1 {
		t.Fatalf("inspect a = %d, %v:\n%s", code, err, out)
	}
	if in := inspected[0]; in.State.Phase != "exited" || in.State.Exit == nil || *in.State.Exit != 137 ||
		len(in.Disks) != 2 || in.Disks[1] != base || filepath.Base(filepath.Dir(base)) != in.ImageKey || len(in.QEMU) == 0 {
		t.Errorf("inspect a = %+v; want exited 137 over %s", in, base)
	}
	wantMachine := "-M pc"
	if qemu.HostTSCkHz() > 0 {
		wantMachine = "-M microvm,"
	}
	if argv := strings.Join(inspected[0].QEMU, " "); !strings.Contains(argv, wantMachine) {
		t.Errorf("inspect a: QEMU %s; want %q, the default machine here", argv, wantMachine)
	}
	overlay := filepath.Join(c.state, "vms", "a", "disk.qcow2")
	if got := overlayCat(t, overlay, "/mark-a"); got != "from a\n" {
		t.Errorf("a's /mark-a = %q; want its own write", got)
	}
	if got := overlayCat(t, overlay, "/mark-b"); got != "" {
		t.Errorf("a's disk has b's /mark-b: %q", got)
	}
	if got := DebugfsCat(t, base, "/mark-a"); got != "" {
		t.Errorf("the base has a's write: %q", got)
	}
	if out, _, code := c.run(t, "rm", "a"); code != 0 || out != "a\n" {
		t.Errorf("rm a = %d, %q", code, out)
	}

	// QEMU killed under the VM: dead, not running.
	if _, errOut, code := c.run(t, "run", "-d", "--name", "c", image, "steps", "stopwait=/x"); code != 0 {
		t.Fatalf("run -d --name c: %d %s", code, errOut)
	}
	pid, err := os.ReadFile(filepath.Join(c.state, "vms", "c", "qemu.pid"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(pid)))
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 QEMU %d: %v", n, err)
	}
	c.await(t, "dead", "ps", "-a")

	// A taken name: one line, 125, and nothing made or changed.
	before, _ := filepath.Glob(filepath.Join(c.state, "*", "*", "*"))
	if out, errOut, code := c.run(t, "run", "-d", "--name", "c", image); code != 125 || out != "" ||
		errOut != "ginitctl: VM \"c\": name already in use (ginitctl rm c)\n" {
		t.Errorf("run --name c again = %d, %q, %q; want 125 and one line", code, out, errOut)
	}
	if after, _ := filepath.Glob(filepath.Join(c.state, "*", "*", "*")); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("a refused run changed the state: %v; was %v", after, before)
	}
	if out, errOut, code := c.run(t, "run", "--machine", "virt", image); code != 125 || out != "" ||
		errOut != "ginitctl: --machine: machine \"virt\": want one of microvm, pc, q35\n" {
		t.Errorf("run --machine virt = %d, %q, %q; want 125 and one line", code, out, errOut)
	}
	if after, _ := filepath.Glob(filepath.Join(c.state, "*", "*", "*")); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("a run on an unknown machine changed the state: %v; was %v", after, before)
	}
	if _, _, code := c.run(t, "rm", "c"); code != 0 {
		t.Errorf("rm c (dead): %d", code)
	}
	if out, _, code := c.run(t, "prune"); code != 0 || !strings.Contains(out, "removed image "+filepath.Base(filepath.Dir(base))) {
		t.Errorf("prune = %d:\n%s", code, out)
	}
	if left, _ := filepath.Glob(filepath.Join(c.state, "*", "*")); len(left) != 1 { // images/.lock
		t.Errorf("after rm and prune: %v", left)
	}
}

// ginitctl run boots an image as docker run would run it: --env-file and
// -e values reach the workload (and are neither on /proc/cmdline nor in
// ginitctl's or QEMU's argv), -w and CMD apply, the workload's full status
// comes back from the control channel, --rm leaves no state.
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
	// The status is the one ginit sent on the control channel as the
	// workload exited, not one read off the console.
	var ended struct {
		Exit *int   `json:"exit"`
		From string `json:"from"`
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(left[0]), "status.json"))
	if err == nil {
		err = json.Unmarshal(b, &ended)
	}
	if err != nil || ended.Exit == nil || *ended.Exit != 255 || ended.From != "channel" {
		t.Errorf("status.json = %s (%v); want exit 255 from the channel", b, err)
	}

	if out, code := run("dir:" + filepath.Join(tmp, "missing")); code != 125 || !strings.Contains(out, "ginitctl: image dir:") {
		t.Errorf("ginitctl run dir:missing = %d, %q; want 125 and one line naming the source", code, out)
	}
}

// Ctrl-C to a foreground run stops the VM as docker run stops a
// container, through the control channel: the image's StopSignal reaches
// the workload, and its status comes back.
func TestGinitctlCtrlC(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	tmp := t.TempDir()
	ctl := a.buildGinitctl(t, tmp)
	root := probeRoot(t, a, map[string]any{"Entrypoint": []string{"/app/probe", "stopwait", "/stopped.txt"}, "StopSignal": "SIGUSR1"})
	state := filepath.Join(tmp, "state")
	cmd := exec.Command(ctl, "run", "--state", state, "--kernel", a.Kernel, "--initrd", a.Initrd, "--append", "ginit.debug", "dir:"+root)
	out, code := runCtrlC(t, cmd)
	if code != 0 || !strings.Contains(out, "ginit: control channel: stop requested") {
		t.Errorf("ginitctl after Ctrl-C: status %d; want 0 and the stop asked on the control channel:\n%s", code, out)
	}
	disks, _ := filepath.Glob(filepath.Join(state, "vms", "*", "disk.qcow2"))
	if len(disks) != 1 {
		t.Fatalf("disks %v; want one", disks)
	}
	if got := overlayCat(t, disks[0], "/stopped.txt"); got != "stopped by SIGUSR1\n" {
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
