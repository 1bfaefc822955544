package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/nsrun/nstest"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// Built once by TestMain when running as root: a static chrootrun (the shim
// re-executes it inside bare roots) and the static guest.
var chrootrunBin, guestBin string

func TestMain(m *testing.M) {
	os.Exit(nstest.Main(m, "chrootrun-test-", nstest.Bin{Path: &chrootrunBin, Name: "chrootrun", Pkg: "."},
		nstest.Bin{Path: &guestBin, Name: "nsguest", Pkg: "../../integration/testdata/nsguest"}))
}

func needRoot(t *testing.T) { nstest.NeedRoot(t) }

// newRoot makes a bare root directory holding only the guest at /nsguest.
func newRoot(t *testing.T) string { return nstest.NewRoot(t, guestBin) }

type result struct {
	stdout, stderr string
	code           int
}

// chrootrun runs the built command and returns its output and status.
func chrootrun(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chrootrunBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout.String(), stderr.String(), 0}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("chrootrun %q: %v", args, err)
	}
	return r
}

// report is what `nsguest info` prints.
type report struct {
	Pid, Ppid    int
	Sid, TtyNr   int
	Init         string
	UID, GID     int
	Groups       []int
	Hostname     string
	Env          []string
	Cwd          string
	Mounts       map[string]string
	CapEff       string
	CapBnd       string
	NoNewPrivs   string
	ProcSysWrite string
	DevEntries   []string
}

func info(t *testing.T, args ...string) report {
	t.Helper()
	r := chrootrun(t, append(args, "/nsguest", "info")...)
	if r.code != 0 {
		t.Fatalf("chrootrun %q /nsguest info: status %d; stderr %s", args, r.code, r.stderr)
	}
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("parse info %q: %v", r.stdout, err)
	}
	return rep
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--bogus", "/"},
		{"--dev", "none", "/"},
		{"--shim", "maybe", "/"},
		{"--on-reboot", "later", "/"},
		{"--bind", "rel:dst", "/"},
		{"--cap-add", "CAP_SYS_ADMIN", "/"},
		{"--drop-caps", "--cap-add", "CAP_FLY", "/"},
		{"--stop-signal", "SIGNOPE", "/"},
		{"--name", "a/b", "/"},
		{"/nonexistent-root", "/bin/true"},
		{"exec"},
		{"exec", "--state", "/nonexistent", "nobody", "/bin/true"},
	} {
		var stderr bytes.Buffer
		if code := run(args, io.Discard, &stderr); code != exitFailed {
			t.Errorf("run(%q) = %d; want %d (stderr %q)", args, code, exitFailed, stderr.String())
		}
	}
}

func TestParseBind(t *testing.T) {
	for _, tc := range []struct {
		in      string
		src     string
		dst     string
		ro, bad bool
	}{
		{in: "/data", src: "/data", dst: "/data"},
		{in: "/data:/srv", src: "/data", dst: "/srv"},
		{in: "/data:/srv:ro", src: "/data", dst: "/srv", ro: true},
		{in: "/data::ro", src: "/data", dst: "/data", ro: true},
		{in: "/data:srv", bad: true},
		{in: "/data:/srv:xx", bad: true},
		{in: ":/srv", bad: true},
	} {
		b, err := parseBind(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("parseBind(%q) error = %v; want error %v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && (b.Source != tc.src || b.Target != tc.dst || b.ReadOnly != tc.ro) {
			t.Errorf("parseBind(%q) = %+v; want %s:%s ro=%v", tc.in, b, tc.src, tc.dst, tc.ro)
		}
	}
}

func TestPID1AndMounts(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	rep := info(t, "--shim=never", root)
	if rep.Pid != 1 {
		t.Errorf("guest pid = %d; want 1", rep.Pid)
	}
	for mp, want := range map[string]string{
		"/proc":          "proc rw,nosuid,nodev,noexec",
		"/sys":           "sysfs ro,nosuid,nodev,noexec",
		"/sys/fs/cgroup": "cgroup2 rw,nosuid,nodev,noexec",
		"/dev":           "tmpfs rw,nosuid",
		"/dev/pts":       "devpts rw,nosuid,noexec",
		"/dev/shm":       "tmpfs rw,nosuid,nodev,noexec",
		"/run":           "tmpfs rw,nosuid,nodev",
		"/tmp":           "tmpfs rw,nosuid,nodev",
		"/proc/sys":      "proc ro,",
	} {
		if got := rep.Mounts[mp]; !strings.HasPrefix(got, want) {
			t.Errorf("mount %s = %q; want %q...", mp, got, want)
		}
	}
	// runc's masks cover the paths this kernel has.
	masked := 0
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sysrq-trigger", "/proc/acpi", "/sys/firmware", "/proc/scsi"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		masked++
		if _, ok := rep.Mounts[p]; !ok {
			t.Errorf("%s is not masked: mounts %v", p, rep.Mounts)
		}
	}
	if masked == 0 {
		t.Errorf("none of runc's masked paths exist on this host: the test proves nothing")
	}
	if !strings.Contains(rep.ProcSysWrite, "read-only") {
		t.Errorf("writing /proc/sys: %q; want a read-only file system error", rep.ProcSysWrite)
	}
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd"} {
		if !contains(rep.DevEntries, d) {
			t.Errorf("/dev lacks %s: %v", d, rep.DevEntries)
		}
	}
	if contains(rep.DevEntries, "sda") || contains(rep.DevEntries, "vda") || contains(rep.DevEntries, "kmsg") {
		t.Errorf("minimal /dev holds host devices: %v", rep.DevEntries)
	}

	priv := info(t, "--shim=never", "--privileged", root)
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sys"} {
		if _, ok := priv.Mounts[p]; ok {
			t.Errorf("--privileged: %s is still masked or read-only", p)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestHostnameEnvUserWorkdir(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nalice:x:1001:1002::/home/alice:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nalice:x:1002:\nstaff:x:50:alice\n"), 0o644)
	rep := info(t, "--hostname", "box", "--env", "A=1", "--env", "PATH=/bin", "--user", "alice", "--workdir", "/work/here", root)
	if rep.Hostname != "box" {
		t.Errorf("hostname = %q; want box", rep.Hostname)
	}
	if rep.UID != 1001 || rep.GID != 1002 || len(rep.Groups) != 1 || rep.Groups[0] != 50 {
		t.Errorf("uid, gid, groups = %d, %d, %v; want 1001, 1002, [50]", rep.UID, rep.GID, rep.Groups)
	}
	if rep.Cwd != "/work/here" {
		t.Errorf("cwd = %q; want /work/here", rep.Cwd)
	}
	want := []string{"HOME=/home/alice", "container=chrootrun", "A=1", "PATH=/bin"}
	if strings.Join(rep.Env, " ") != strings.Join(want, " ") {
		t.Errorf("env = %q; want %q (nothing of the host's)", rep.Env, want)
	}
	if rep.CapEff != "0000000000000000" {
		t.Errorf("CapEff of uid 1001 = %s; want none", rep.CapEff)
	}
	if h, _ := os.Hostname(); h == "box" {
		t.Errorf("the host's hostname changed to box")
	}
}

func TestCapabilities(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	rep := info(t, "--drop-caps", "--cap-add", "net_admin", "--no-new-privs", root)
	// Docker's set, CAP_SYS_BOOT and CAP_NET_ADMIN.
	const want = "00000000a84435fb"
	if rep.CapEff != want || rep.CapBnd != want {
		t.Errorf("CapEff, CapBnd = %s, %s; want %s", rep.CapEff, rep.CapBnd, want)
	}
	if rep.NoNewPrivs != "1" {
		t.Errorf("NoNewPrivs = %q; want 1", rep.NoNewPrivs)
	}
	full := info(t, root)
	if full.CapEff == want || full.NoNewPrivs != "0" {
		t.Errorf("without flags: CapEff %s NoNewPrivs %s; want the host's capabilities and 0", full.CapEff, full.NoNewPrivs)
	}
}

func TestOrphansReaped(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	r := chrootrun(t, root, "/nsguest", "orphans", "20")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "zombies 0 alive 0" {
		t.Errorf("orphans under the shim: status %d, %q (stderr %s); want 0, \"zombies 0 alive 0\"", r.code, r.stdout, r.stderr)
	}
}

func TestPowerOffAndReboot(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	for _, tc := range []struct {
		how  string
		code int
		says string
	}{
		{"poweroff", 0, ": poweroff"},
		{"halt", 0, ": poweroff"},
		{"restart", exitReboot, ": reboot"},
	} {
		for _, shim := range []string{"always", "never"} {
			r := chrootrun(t, "--shim="+shim, root, "/nsguest", "reboot", tc.how)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.says) {
				t.Errorf("--shim=%s reboot %s: status %d, stderr %q; want %d and %q", shim, tc.how, r.code, r.stderr, tc.code, tc.says)
			}
		}
	}
	// The restart comes back; the second run finds the mark and exits.
	r := chrootrun(t, "--on-reboot=restart", root, "/nsguest", "reboot-once", "/mark")
	if r.code != 0 || strings.Count(r.stderr, ": reboot") != 1 {
		t.Errorf("--on-reboot=restart: status %d, stderr %q; want 0 after one reboot", r.code, r.stderr)
	}
}

func TestCommandStatus(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	os.WriteFile(filepath.Join(root, "noexec"), nil, 0o644)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"/nsguest", "exit", "7"}, 7},
		{[]string{"--shim=never", "/nsguest", "exit", "7"}, 7},
		{[]string{"/missing"}, 127},
		{[]string{"missing"}, 127},
		{[]string{"/dir"}, 126},
		{[]string{"/noexec"}, 126},
	} {
		args := append([]string{root}, tc.args...)
		if tc.args[0] == "--shim=never" {
			args = append([]string{tc.args[0], root}, tc.args[1:]...)
		}
		if r := chrootrun(t, args...); r.code != tc.code {
			t.Errorf("chrootrun %q: status %d (stderr %q); want %d", args, r.code, r.stderr, tc.code)
		}
	}
}

func TestBindAndTmpfs(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	data := t.TempDir()
	os.WriteFile(filepath.Join(data, "hello"), []byte("from the host"), 0o644)
	r := chrootrun(t, "--bind", data+":/data:ro", "--tmpfs", "/scratch", "--read-only", root, "/nsguest", "cat", "/data/hello")
	if r.code != 0 || r.stdout != "from the host" {
		t.Errorf("cat /data/hello: status %d, %q (stderr %s)", r.code, r.stdout, r.stderr)
	}
	rep := info(t, "--bind", data+":/data:ro", "--tmpfs", "/scratch", "--read-only", root)
	for mp, want := range map[string]string{"/data": " ro,", "/scratch": "tmpfs rw", "/": " ro,"} {
		if !strings.Contains(rep.Mounts[mp], want) {
			t.Errorf("mount %s = %q; want %q", mp, rep.Mounts[mp], want)
		}
	}
}

// startNamed starts a named guest that serves until stopped, and waits for
// its record.
func startNamed(t *testing.T, state, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(chrootrunBin, append([]string{"--name", name, "--state", state}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(state, name+".json")); err == nil {
			return cmd
		}
	}
	t.Fatalf("instance %s: no record after 10s", name)
	return nil
}

func TestExecAndPs(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root, state := newRoot(t), t.TempDir()
	cmd := startNamed(t, state, "guest1", "--shim=never", "--hostname", "inside", "--env", "FROM=instance", root, "/nsguest", "serve")

	ps := chrootrun(t, "ps", "--state", state)
	if ps.code != 0 || !strings.Contains(ps.stdout, "guest1") || !strings.Contains(ps.stdout, root) {
		t.Errorf("ps: status %d, %q; want guest1 and %s listed", ps.code, ps.stdout, root)
	}
	if r := chrootrun(t, "exec", "--state", state, "guest1", "/nsguest", "exit", "9"); r.code != 9 {
		t.Errorf("exec exit 9: status %d (stderr %q); want 9", r.code, r.stderr)
	}
	if r := chrootrun(t, "exec", "--state", state, "guest1", "/missing"); r.code != 127 {
		t.Errorf("exec /missing: status %d; want 127", r.code)
	}
	r := chrootrun(t, "exec", "--state", state, "--env", "B=2", "guest1", "/nsguest", "info")
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("exec info: %v: %q (stderr %q)", err, r.stdout, r.stderr)
	}
	if rep.Init != "/nsguest serve" || rep.Ppid != 0 || rep.Hostname != "inside" {
		t.Errorf("exec sees init %q, ppid %d, hostname %q; want \"/nsguest serve\", 0 (parent outside), inside", rep.Init, rep.Ppid, rep.Hostname)
	}
	if !contains(rep.Env, "FROM=instance") || !contains(rep.Env, "B=2") {
		t.Errorf("exec env = %q; want the instance's and B=2", rep.Env)
	}
	if _, ok := rep.Mounts["/proc/sys"]; !ok {
		t.Errorf("exec does not see the instance's mounts: %v", rep.Mounts)
	}

	// SIGTERM to chrootrun reaches serve, which exits 0; the record goes.
	// serve is a PID 1, which ignores a signal it has no handler for yet.
	nstest.WaitServing(t, root)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("chrootrun after SIGTERM: %v; want status 0", err)
	}
	if _, err := os.Stat(filepath.Join(state, "guest1.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record after the instance ended: %v; want it removed", err)
	}
	if r := chrootrun(t, "exec", "--state", state, "guest1", "/nsguest", "exit", "0"); r.code != exitFailed {
		t.Errorf("exec into an ended instance: status %d; want %d", r.code, exitFailed)
	}
}

func TestStaleRecordRemoved(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root, state := newRoot(t), t.TempDir()
	cmd := startNamed(t, state, "stale", root, "/nsguest", "serve")
	// Killing chrootrun leaves its record behind; SIGKILL to the init ends
	// the namespace.
	b, _ := os.ReadFile(filepath.Join(state, "stale.json"))
	var rec struct{ Pid int }
	json.Unmarshal(b, &rec)
	cmd.Process.Kill()
	cmd.Wait()
	unix.Kill(rec.Pid, unix.SIGKILL)
	for i := 0; i < 100 && unix.Kill(rec.Pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if ps := chrootrun(t, "ps", "--state", state); strings.Contains(ps.stdout, "stale") {
		t.Errorf("ps lists an ended instance: %q", ps.stdout)
	}
	if _, err := os.Stat(filepath.Join(state, "stale.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record: %v; want it removed by ps", err)
	}
	// The name is free again.
	if r := chrootrun(t, "--name", "stale", "--state", state, root, "/nsguest", "exit", "3"); r.code != 3 {
		t.Errorf("reusing the name: status %d (stderr %q); want 3", r.code, r.stderr)
	}
}

func TestStopSignal(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--shim=never"}, "got 15", 0},
		{[]string{"--shim=always"}, "got 15", 0},
		{[]string{"--stop-signal", "SIGRTMIN+3"}, "got 37", 0},
		{[]string{"--shim=never", "--stop-signal", "USR1"}, "got 10", 0},
	} {
		args := append(append([]string{}, tc.args...), root, "/nsguest", "wait-signal")
		cmd := exec.Command(chrootrunBin, args...)
		var stdout bytes.Buffer
		pr, pw, _ := os.Pipe()
		cmd.Stdout = pw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		// Wait for "ready", so the guest's handler is in place.
		buf := make([]byte, 6)
		if _, err := pr.Read(buf); err != nil || string(buf) != "ready\n" {
			t.Fatalf("%q: read %q, %v; want ready", args, buf, err)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		stdout.ReadFrom(pr)
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		if strings.TrimSpace(stdout.String()) != tc.want || code != tc.code {
			t.Errorf("%q, SIGTERM to chrootrun: guest says %q, status %d; want %q, %d", args, stdout.String(), code, tc.want, tc.code)
		}
	}
	// A guest that ignores the stop signal gets SIGKILL after the timeout:
	// 137, where its own 20 s sleep would have ended with 0.
	cmd := exec.Command(chrootrunBin, "--stop-timeout", "300ms", root, "/nsguest", "stubborn", "20s")
	pr, pw, _ := os.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// Wait for "ready": a SIGTERM before the guest ignores it would kill it.
	buf := make([]byte, 6)
	if _, err := pr.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("stubborn guest: read %q, %v; want ready", buf, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	pr.Close()
	if code := cmd.ProcessState.ExitCode(); code != 128+9 {
		t.Errorf("stop timeout: status %d; want %d", code, 128+9)
	}
}

// inInitramfs runs script with sh in a new mount namespace, with dir a fresh
// tmpfs: the stand-in for an initramfs, whose root is not a mount point one
// can pivot away from.
func inInitramfs(t *testing.T, script string) (string, error) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		testenv.Missing(t, "needs sh")
	}
	cmd := exec.Command(sh, "-ec", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMoveRootFromInitramfs(t *testing.T) {
	needRoot(t)
	t.Parallel()
	dir := t.TempDir()
	script := fmt.Sprintf(`
D=%[1]s
mount -t tmpfs tmpfs $D
mkdir -p $D/i/proc $D/i/dev $D/i/newroot $D/i/vol
cp %[2]s $D/i/chrootrun
cp %[3]s $D/i/newroot/nsguest
mount -t proc proc $D/i/proc
mount --rbind /dev $D/i/dev
# A volume in the outer root, carried into the new one.
mount -t tmpfs tmpfs $D/i/vol
echo carried > $D/i/vol/file
chroot $D/i /chrootrun -v --carry-mounts --shim=never /newroot /nsguest cat /vol/file
echo
chroot $D/i /chrootrun /newroot /nsguest reboot restart || echo "status $?"
`, dir, chrootrunBin, guestBin)
	out, err := inInitramfs(t, script)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"entered by move", "carried\n", "reboot", "status 133"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
