package nsrun

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/nsrun/nstest"
	"github.com/ginit-dev/ginit/internal/pty"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// Built by TestMain as root: the stage binary Start re-executes (static,
// since the shim re-executes it inside bare roots) and the guest.
var stageBin, guestBin string

func TestMain(m *testing.M) {
	os.Exit(nstest.Main(m, "nsrun-test-", nstest.Bin{Path: &stageBin, Name: "stage", Pkg: "./testdata/stage"},
		nstest.Bin{Path: &guestBin, Name: "nsguest", Pkg: "../../integration/testdata/nsguest"}))
}

func needRoot(t *testing.T) { nstest.NeedRoot(t) }

// newRoot makes a bare root directory holding only the guest at /nsguest.
func newRoot(t *testing.T) string { return nstest.NewRoot(t, guestBin) }

// run starts cfg with the test stage and returns how it ended and what it
// wrote to stdout.
func run(t *testing.T, cfg Config) (Exit, string, *Process) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cfg.Exe, cfg.Stdout = stageBin, out
	p, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start(%q): %v", cfg.Argv, err)
	}
	e := p.Wait()
	b, _ := os.ReadFile(out.Name())
	return e, string(b), p
}

func TestStartReasons(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	for _, tc := range []struct {
		argv   []string
		shim   bool
		reason Reason
		code   int
	}{
		{[]string{"/nsguest", "exit", "4"}, false, Exited, 4},
		{[]string{"/nsguest", "exit", "4"}, true, Exited, 4},
		{[]string{"/nsguest", "reboot", "poweroff"}, false, PowerOff, 130},
		{[]string{"/nsguest", "reboot", "halt"}, true, PowerOff, 130},
		{[]string{"/nsguest", "reboot", "restart"}, false, Reboot, 129},
		{[]string{"/nsguest", "reboot", "restart"}, true, Reboot, 129},
	} {
		e, _, p := run(t, Config{Root: root, Shim: tc.shim, Command: Command{Argv: tc.argv}})
		if e.Reason != tc.reason || e.Code != tc.code {
			t.Errorf("%q shim=%v: %v (%v, %d); want %v, %d", tc.argv, tc.shim, e, e.Reason, e.Code, tc.reason, tc.code)
		}
		if p.RootMethod != "pivot_root" {
			t.Errorf("RootMethod = %q; want pivot_root", p.RootMethod)
		}
	}
}

func TestStartErrors(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	for _, tc := range []struct {
		cfg   Config
		code  int
		errno error
	}{
		{Config{Root: root, Command: Command{Argv: []string{"/missing"}}}, imagespec.ExitNotFound, unix.ENOENT},
		{Config{Root: root, Shim: true, Command: Command{Argv: []string{"missing"}}}, imagespec.ExitNotFound, unix.ENOENT},
		{Config{Root: root, Command: Command{Argv: []string{"/"}}}, imagespec.ExitNotExecutable, unix.EISDIR},
		{Config{Root: root, Command: Command{Argv: nil}}, imagespec.ExitNotFound, nil},
		{Config{Root: filepath.Join(root, "nsguest"), Command: Command{Argv: []string{"/x"}}}, ExitSetupFailed, nil},
		{Config{Root: root, Binds: []Bind{{Source: "/nonexistent", Target: "/x"}}, Command: Command{Argv: []string{"/nsguest"}}}, ExitSetupFailed, unix.ENOENT},
		{Config{Root: root, Command: Command{Argv: []string{"/nsguest"}, Capabilities: []string{"CAP_FLY"}}}, ExitSetupFailed, nil},
	} {
		tc.cfg.Exe = stageBin
		p, err := Start(tc.cfg)
		var se *imagespec.StartError
		if !errors.As(err, &se) || se.Code != tc.code {
			t.Errorf("Start(%+v) = %v, %v; want a StartError with code %d", tc.cfg, p, err, tc.code)
			continue
		}
		if tc.errno != nil && !errors.Is(err, tc.errno) {
			t.Errorf("Start(%q): %v; want errors.Is %v", tc.cfg.Argv, err, tc.errno)
		}
	}
}

// TestStartFuncSeam: a caller's StartFunc (PID 1's reaper) forks the stage.
func TestStartFuncSeam(t *testing.T) {
	needRoot(t)
	t.Parallel()
	var calls atomic.Int32
	start := func(argv0 string, argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
		calls.Add(1)
		return forkExec(argv0, argv, attr)
	}
	e, out, _ := run(t, Config{Root: newRoot(t), Start: start, Command: Command{Argv: []string{"/nsguest", "cat", "/proc/1/cmdline"}}})
	if e.Code != 0 || calls.Load() != 1 || !strings.HasPrefix(out, "/nsguest\x00cat") {
		t.Errorf("with a StartFunc: %v, %d calls, PID 1 %q; want status 0, 1 call, the command itself", e, calls.Load(), out)
	}
}

func TestControllingTerminal(t *testing.T) {
	needRoot(t)
	t.Parallel()
	master, slave := openPty(t)
	p, err := Start(Config{Root: newRoot(t), Exe: stageBin, Command: Command{
		Argv: []string{"/nsguest", "info"}, Stdin: slave, Stdout: slave, Stderr: slave, Ctty: true,
	}})
	slave.Close()
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(master).ReadString('\n')
	p.Wait()
	if err != nil {
		t.Fatalf("read the terminal: %v (%q)", err, line)
	}
	var rep struct {
		Pid, Sid, TtyNr int
		DevEntries      []string
	}
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	if rep.Pid != 1 || rep.Sid != 1 || rep.TtyNr == 0 {
		t.Errorf("pid %d, session %d, tty_nr %d; want 1, 1 (its own session) and a controlling terminal", rep.Pid, rep.Sid, rep.TtyNr)
	}
	if !contains(rep.DevEntries, "console") {
		t.Errorf("/dev = %v; want the terminal as console", rep.DevEntries)
	}
}

func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		testenv.Missing(t, "no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, s
}

func TestJoinAndStop(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	p, err := Start(Config{Root: root, Exe: stageBin, Hostname: "joined", Command: Command{Argv: []string{"/nsguest", "serve"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(unix.SIGKILL, 0)
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	j, err := Join(p.Pid, Command{Argv: []string{"/nsguest", "info"}, Stdout: out, UID: 7, GID: 8}, JoinOptions{Exe: stageBin})
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if e := j.Wait(); e.Reason != Exited || e.Code != 0 {
		t.Errorf("joined info: %v; want status 0", e)
	}
	var rep struct {
		Init, Hostname string
		UID, GID       int
	}
	b, _ := os.ReadFile(out.Name())
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("parse %q: %v", b, err)
	}
	if rep.Init != "/nsguest serve" || rep.Hostname != "joined" || rep.UID != 7 || rep.GID != 8 {
		t.Errorf("joined command sees init %q, hostname %q, uid %d gid %d; want \"/nsguest serve\", joined, 7, 8", rep.Init, rep.Hostname, rep.UID, rep.GID)
	}

	// serve, PID 1 with a handler, ends on SIGTERM with status 0 (the
	// SIGKILL after the grace would show as a signal). A PID 1 ignores a
	// signal it has no handler for, so wait until serve has one.
	nstest.WaitServing(t, root)
	p.Stop(unix.SIGTERM, time.Minute)
	if e := p.Wait(); e.Reason != Exited || e.Code != 0 {
		t.Errorf("after Stop: %v; want status 0 from serve's handler", e)
	}
	if err := p.Signal(unix.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after the end = %v; want os.ErrProcessDone", err)
	}
	if _, err := Join(p.Pid, Command{Argv: []string{"/nsguest"}}, JoinOptions{Exe: stageBin}); err == nil {
		t.Errorf("Join of an ended instance succeeded")
	}
}
