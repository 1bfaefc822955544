package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/ctlserver/ctltest"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/klog"
	"github.com/ginit-dev/ginit/internal/shutdown"
	"github.com/ginit-dev/ginit/internal/workload"
)

// fakeMachine records what the boot sequence asks of the machine; each
// step's result is a field a test sets.
type fakeMachine struct {
	cmdline     string
	runDoc      []byte // the fw_cfg run document; nil for none
	runDocErr   error
	overrides   []imagespec.Override // what resolveWorkload was given
	mountErr    error
	rootErr     error
	rootEnd     *ending
	resolveErr  error
	runMountErr error  // from mountRunDocument
	panicAt     string // a step that panics
	proc        *fakeProcess
	init        bool // the workload is an init: prepareRoot gets forInit

	signals chan os.Signal

	mu        sync.Mutex
	steps     []string
	shells    int
	ended     bool
	action    shutdown.Action
	status    int
	forInit   bool
	daemonSig unix.Signal
}

func (f *fakeMachine) step(name string) {
	f.mu.Lock()
	f.steps = append(f.steps, name)
	f.mu.Unlock()
	if f.panicAt == name {
		panic("boom in " + name)
	}
}

func (f *fakeMachine) mountEarly() error { f.step("mountEarly"); return f.mountErr }
func (f *fakeMachine) readCmdline() (string, error) {
	f.step("readCmdline")
	return f.cmdline, nil
}
func (f *fakeMachine) becomePID1() <-chan os.Signal { f.step("becomePID1"); return f.signals }
func (f *fakeMachine) loadModules(bootcfg.Config) func() {
	f.step("loadModules")
	return func() { f.step("loadRest") }
}
func (f *fakeMachine) startControl()                       {}
func (f *fakeMachine) startNetwork(bootcfg.Config) network { f.step("startNetwork"); return nil }
func (f *fakeMachine) obtainRoot(bootcfg.Config, network) (string, *ending, error) {
	f.step("obtainRoot")
	return "/dev/vda", f.rootEnd, f.rootErr
}
func (f *fakeMachine) readRunDocument() ([]byte, error) {
	f.step("readRunDocument")
	return f.runDoc, f.runDocErr
}
func (f *fakeMachine) resolveWorkload(overrides ...imagespec.Override) (workload.Process, error) {
	f.step("resolveWorkload")
	f.overrides = overrides
	argv0 := "/bin/app"
	if f.init {
		argv0 = "/lib/systemd/systemd"
	}
	return workload.Process{Spec: imagespec.Spec{Argv: []string{argv0}, StopSignal: "SIGQUIT"}, Argv0: argv0}, f.resolveErr
}
func (f *fakeMachine) prepareRoot(forInit bool) error {
	f.step("prepareRoot")
	f.forInit = forInit
	return nil
}
func (f *fakeMachine) mountRunDocument(late bool) error {
	if late {
		f.step("mountRunDocument(late)")
	} else {
		f.step("mountRunDocument")
	}
	return f.runMountErr
}
func (f *fakeMachine) startWorkload(workload.Process, initInfo) (process, error) {
	f.step("startWorkload")
	if f.proc == nil {
		return nil, fmt.Errorf("exec /bin/app: %w", unix.ENOENT)
	}
	return f.proc, nil
}
func (f *fakeMachine) afterStart(loadRest func()) { f.step("afterStart"); loadRest() }
func (f *fakeMachine) waitDaemons(stop unix.Signal) {
	f.step("waitDaemons")
	f.daemonSig = stop
}
func (f *fakeMachine) startShell() <-chan unix.WaitStatus {
	f.step("startShell")
	f.shells++
	c := make(chan unix.WaitStatus, 1)
	c <- 0
	return c
}
func (f *fakeMachine) pause(d time.Duration) { f.step("pause " + d.String()) }

func (f *fakeMachine) shutdown(a shutdown.Action, status int) {
	f.step("shutdown")
	f.ended, f.action, f.status = true, a, status
}

// fakeProcess is a workload that exits with status when it gets one of
// exitOn, or at once when exitOn is empty.
type fakeProcess struct {
	status int
	then   *shutdown.Action
	exitOn []unix.Signal
	done   chan struct{}
	once   sync.Once

	mu  sync.Mutex
	got []unix.Signal
}

func newProcess(status int, exitOn ...unix.Signal) *fakeProcess {
	p := &fakeProcess{status: status, exitOn: exitOn, done: make(chan struct{})}
	if len(exitOn) == 0 {
		close(p.done)
	}
	return p
}

func (p *fakeProcess) Done() <-chan struct{} { return p.done }
func (p *fakeProcess) Pid() int              { return 0 }
func (p *fakeProcess) Signal(sig unix.Signal) {
	p.mu.Lock()
	p.got = append(p.got, sig)
	p.mu.Unlock()
	if slices.Contains(p.exitOn, sig) {
		p.once.Do(func() { close(p.done) })
	}
}
func (p *fakeProcess) Exit() (int, *shutdown.Action) { return p.status, p.then }

func runBoot(t *testing.T, m *fakeMachine) (*fakeMachine, string) {
	t.Helper()
	// The workload's readiness probe may still log after run returns.
	var out ctltest.Buffer
	b := newBoot(klog.NewWriter(&out))
	if m.signals == nil {
		m.signals = make(chan os.Signal, 4)
	}
	b.m = m
	done := make(chan struct{})
	go func() { b.run(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("run() did not end; steps %q", m.steps)
	}
	if !m.ended {
		t.Fatalf("run() returned without shutdown; steps %q", m.steps)
	}
	return m, out.String()
}

func ptr(a shutdown.Action) *shutdown.Action { return &a }

// Every way a boot ends reaches the one shutdown, with the action and
// status the configuration and the step say.
func TestBootEndings(t *testing.T) {
	kexec := endIn(shutdown.Kexec, 0)
	for _, tc := range []struct {
		name       string
		m          *fakeMachine
		wantAction shutdown.Action
		wantStatus int
		wantShells int
		wantLog    string
	}{
		{"workload exits 3", &fakeMachine{proc: newProcess(3)}, shutdown.PowerOff, 3, 0, "entrypoint exited with status 3"},
		{"onexit=halt", &fakeMachine{cmdline: "ginit.onexit=halt", proc: newProcess(0)}, shutdown.Halt, 0, 0, ""},
		{"quiet still prints the exit line", &fakeMachine{cmdline: "quiet", proc: newProcess(0)}, shutdown.PowerOff, 0, 0, "entrypoint exited with status 0"},
		{"onexit=shell", &fakeMachine{cmdline: "ginit.onexit=shell", proc: newProcess(4)}, shutdown.PowerOff, 4, 1, "ginit.onexit=shell"},
		{"early mounts fail: rescue shell", &fakeMachine{mountErr: errors.New("mount /proc: EPERM")}, shutdown.PowerOff, 125, 1, "boot failed: mount /proc: EPERM"},
		{"root missing, onerror=reboot", &fakeMachine{cmdline: "ginit.onerror=reboot", rootErr: errors.New("root /dev/vdz: not found")}, shutdown.Reboot, 125, 0, "boot failed: root /dev/vdz: not found"},
		{"boot mode kexecs", &fakeMachine{cmdline: "ginit.onexit=halt", rootEnd: &kexec}, shutdown.Kexec, 0, 0, ""},
		{"command not found", &fakeMachine{resolveErr: &imagespec.StartError{Path: "/bin/nosuch", Err: unix.ENOENT, Code: imagespec.ExitNotFound}}, shutdown.PowerOff, 127, 0, "entrypoint exited with status 127"},
		{"exec fails", &fakeMachine{}, shutdown.PowerOff, 127, 0, "entrypoint exited with status 127"},
		{"init powers off, onexit=reboot", &fakeMachine{cmdline: "ginit.onexit=reboot", init: true, proc: &fakeProcess{then: ptr(shutdown.PowerOff), done: closed()}}, shutdown.PowerOff, 0, 0, ""},
		{"a volume cannot mount", &fakeMachine{runMountErr: errors.New("volume /data: no disk with serial ginit-vol0"), proc: newProcess(0)}, shutdown.PowerOff, 125, 1, "boot failed: volume /data: no disk"},
		{"panic in a step", &fakeMachine{cmdline: "ginit.onerror=halt", panicAt: "resolveWorkload"}, shutdown.Halt, 125, 0, "boot failed: panic: boom in resolveWorkload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, log := runBoot(t, tc.m)
			if m.action != tc.wantAction || m.status != tc.wantStatus || m.shells != tc.wantShells {
				t.Errorf("ended in %v, status %d, %d shells; want %v, %d, %d (steps %q)", m.action, m.status, m.shells, tc.wantAction, tc.wantStatus, tc.wantShells, m.steps)
			}
			if !strings.Contains(log, tc.wantLog) {
				t.Errorf("log %q; want a line with %q", log, tc.wantLog)
			}
			if got := strings.Count(log, "boot failed"); got > 1 {
				t.Errorf("log has %d boot failed lines; want at most one:\n%s", got, log)
			}
			if last := m.steps[len(m.steps)-1]; last != "shutdown" {
				t.Errorf("last step %q; want shutdown", last)
			}
		})
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// A plain command runs beside PID 1 with the host's mounts, an init
// prepares its own; a zero exit waits for daemons, an init's does not.
func TestBootInitOrCommand(t *testing.T) {
	m, _ := runBoot(t, &fakeMachine{proc: newProcess(0)})
	if m.forInit || !slices.Contains(m.steps, "waitDaemons") {
		t.Errorf("command: forInit %v, steps %q; want false and waitDaemons", m.forInit, m.steps)
	}
	if !slices.Contains(m.steps, "loadRest") || slices.Index(m.steps, "loadRest") < slices.Index(m.steps, "startWorkload") {
		t.Errorf("steps %q; want the rest of the modules loaded after the workload starts", m.steps)
	}
	m, _ = runBoot(t, &fakeMachine{init: true, proc: newProcess(0)})
	if !m.forInit || slices.Contains(m.steps, "waitDaemons") {
		t.Errorf("init: forInit %v, steps %q; want true and no waitDaemons", m.forInit, m.steps)
	}
}

// A stop request sends the image's StopSignal; user signals go through as
// they are; a workload that ignores the stop signal gets SIGKILL after
// ginit.stoptimeout.
func TestBootStopSignals(t *testing.T) {
	proc := newProcess(131, unix.SIGQUIT)
	m := &fakeMachine{proc: proc, signals: make(chan os.Signal, 4)}
	m.signals <- unix.SIGUSR1
	m.signals <- unix.SIGPWR
	m, log := runBoot(t, m)
	if want := []unix.Signal{unix.SIGUSR1, unix.SIGQUIT}; !slices.Equal(proc.got, want) {
		t.Errorf("workload got %v; want %v", proc.got, want)
	}
	if m.status != 131 || !strings.Contains(log, "received SIGPWR: sending SIGQUIT") {
		t.Errorf("status %d, log %q; want 131 and the stop line", m.status, log)
	}

	proc = newProcess(137, unix.SIGKILL)
	m = &fakeMachine{cmdline: "ginit.stoptimeout=50ms", proc: proc, signals: make(chan os.Signal, 4)}
	m.signals <- unix.SIGTERM
	m, log = runBoot(t, m)
	if want := []unix.Signal{unix.SIGQUIT, unix.SIGKILL}; !slices.Equal(proc.got, want) || m.status != 137 {
		t.Errorf("workload got %v, status %d; want %v and 137", proc.got, m.status, want)
	}
	if !strings.Contains(log, "still running after 50ms: SIGKILL") {
		t.Errorf("log %q; want the SIGKILL line", log)
	}
}

// The run document comes between the image and the command line; a bad
// one is one error that names the problem, never a value, and fails the
// boot: it may ask for a read-only root or a volume.
func TestBootRunDocument(t *testing.T) {
	doc := []byte(`{"version":1,"env":["TOKEN=s3cret","X=doc"],"user":"app","stop_signal":"SIGUSR1"}`)
	m, log := runBoot(t, &fakeMachine{cmdline: "ginit.env=X=cmdline", runDoc: doc, proc: newProcess(0)})
	if i, j := slices.Index(m.steps, "loadModules"), slices.Index(m.steps, "readRunDocument"); j < i || j > slices.Index(m.steps, "startNetwork") {
		t.Errorf("steps %q; want readRunDocument after loadModules, before startNetwork", m.steps)
	}
	img := imagespec.Image{Config: imagespec.Config{Cmd: []string{"/app"}, Env: []string{"X=img"}}}
	spec, err := imagespec.Merge(img, m.overrides...)
	if err != nil {
		t.Fatalf("Merge(overrides) = %v", err)
	}
	for name, want := range map[string]string{"TOKEN": "s3cret", "X": "cmdline"} {
		if got, _ := imagespec.Getenv(spec.Env, name); got != want {
			t.Errorf("%s = %q; want %q (overrides %+v)", name, got, want, m.overrides)
		}
	}
	if spec.User != "app" || spec.StopSignal != "SIGUSR1" {
		t.Errorf("User, StopSignal = %q, %q; want app, SIGUSR1", spec.User, spec.StopSignal)
	}
	// The document's mounts go in once the root is prepared, before the
	// workload starts.
	if i := slices.Index(m.steps, "mountRunDocument"); i < 0 || m.steps[i-1] != "obtainRoot" || m.steps[i+1] != "resolveWorkload" {
		t.Errorf("steps %q; want mountRunDocument between obtainRoot and resolveWorkload", m.steps)
	}
	if i := slices.Index(m.steps, "mountRunDocument(late)"); i < 0 || m.steps[i-1] != "prepareRoot" || m.steps[i+1] != "startWorkload" {
		t.Errorf("steps %q; want mountRunDocument(late) between prepareRoot and startWorkload", m.steps)
	}
	if !strings.Contains(log, "run document read from fw_cfg opt/ginit/run (2 env entries)") {
		t.Errorf("log %q; want the line naming what the document sets", log)
	}
	if strings.Contains(log, "s3cret") {
		t.Errorf("log %q; shows a value of the run document", log)
	}

	for _, tc := range []struct {
		name string
		m    *fakeMachine
		want string
	}{
		{"bad JSON", &fakeMachine{runDoc: []byte(`{"version":1,"env":["TOKEN=s3cret"],"volume":1}`)}, `run document (fw_cfg opt/ginit/run): run document: unknown field "volume"`},
		{"unreadable", &fakeMachine{runDocErr: errors.New("read: EIO")}, "run document (fw_cfg opt/ginit/run): read: EIO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.proc = newProcess(0)
			tc.m.cmdline = "ginit.onerror=poweroff"
			m, log := runBoot(t, tc.m)
			if strings.Count(log, "run document (fw_cfg") != 1 || !strings.Contains(log, tc.want) || strings.Contains(log, "s3cret") {
				t.Errorf("log %q; want one line %q and no value", log, tc.want)
			}
			if m.status != exitBootFailed || slices.Contains(m.steps, "obtainRoot") {
				t.Errorf("status %d, steps %q; want %d before the root", m.status, m.steps, exitBootFailed)
			}
		})
	}
}

func TestFinalAction(t *testing.T) {
	cfg := bootcfg.Defaults()
	cfg.OnExit, cfg.OnError = bootcfg.Reboot, bootcfg.Shell
	for _, tc := range []struct {
		e     ending
		want  shutdown.Action
		shell bool
	}{
		{exited(0), shutdown.Reboot, false},
		{failed(errors.New("x")), shutdown.PowerOff, true},
		{endIn(shutdown.Kexec, 0), shutdown.Kexec, false},
		{ending{status: 125, err: errors.New("x"), then: ptr(shutdown.Halt)}, shutdown.Halt, false},
	} {
		if a, shell := finalAction(cfg, tc.e); a != tc.want || shell != tc.shell {
			t.Errorf("finalAction(%+v) = %v, %v; want %v, %v", tc.e, a, shell, tc.want, tc.shell)
		}
	}
}
