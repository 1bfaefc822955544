// Package nsrun runs a command inside a root directory with its own mount and
// PID namespaces: chrootrun is a thin command over it, and ginit starts its
// workload through it.
//
// Start re-executes the running binary (/proc/self/exe) under the name
// "chrootrun" as the namespace's first process. That stage makes the mounts
// private, bind-mounts the root onto itself, mounts a fresh proc, sysfs,
// cgroup2, a minimal /dev, /run and /tmp, the caller's binds and tmpfs, masks
// runc's masked paths and makes its read-only paths read-only, then enters
// the root with pivot_root, or with MS_MOVE and chroot where the current root
// is the initramfs. It then either execs the command as the namespace's PID 1
// (a command that is an init), or stays as PID 1 itself (the shim), reaping
// orphans and passing signals on to the command.
//
// The binary must be static (the shim re-executes it inside the root), and
// its main must call Stage first:
//
//	if code, ok := nsrun.Stage(); ok {
//		os.Exit(code)
//	}
//
// In the busybox-style image every command lives in one binary that
// dispatches on argv[0]'s base name, so "chrootrun" reaches chrootrun's main
// whichever command called Start.
//
// Nothing in this package calls os.Exit, log.Fatal or panics: PID 1 calls it.
package nsrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/imagespec"
)

// StageName is argv[0] of the re-executed stages: the command whose main
// calls Stage in the busybox-style image.
const StageName = "chrootrun"

// ExitSetupFailed is the status of a command whose namespace or mounts
// could not be set up: imagespec's 125, as Docker's own failures.
const ExitSetupFailed = imagespec.ExitRunFailed

// Command is the process to run: under Start it is, or runs under, the
// namespace's init; under Join it runs beside it.
type Command struct {
	// Argv[0] is looked up in Env's PATH inside the root when it has no
	// slash; a relative path with a slash is taken from Dir.
	Argv []string
	Env  []string // NAME=VALUE, exactly what the command gets
	Dir  string   // working directory inside the root, made if missing; "/" when empty

	UID, GID uint32
	Groups   []uint32 // supplementary groups; none when empty

	// Stdio of the command; nil is /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Ctty starts the command in a new session with Stdin as its
	// controlling terminal (a console opened with O_NOCTTY).
	Ctty bool

	// Capabilities kept, by name ("CAP_CHOWN" or "chown"); nil keeps all.
	// The rest leave the bounding, permitted, effective and inheritable
	// sets. DefaultCapabilities is Docker's set.
	Capabilities []string
	NoNewPrivs   bool
}

// DevMode says what the namespace's /dev is.
type DevMode int

const (
	// DevMinimal is a tmpfs with null, zero, full, random, urandom, tty,
	// console (the caller's terminal, when stdin is one), ptmx, a new devpts
	// instance and shm.
	DevMinimal DevMode = iota
	// DevHost binds the host's /dev.
	DevHost
)

// Bind is a host path mounted into the root.
type Bind struct {
	Source   string // host path
	Target   string // path inside the root
	ReadOnly bool
}

// Config says what to run where, and how the namespaces look.
type Config struct {
	Root string // host path of the root directory
	Command

	Hostname string // set in a new UTS namespace
	NewUTS   bool   // a new UTS namespace even without Hostname
	NewIPC   bool   // a new IPC namespace, with its own /dev/mqueue

	Dev   DevMode
	Binds []Bind
	Tmpfs []string // paths inside the root that get an empty tmpfs
	// CarryMounts binds the host's own extra mounts (volumes, Docker's
	// /etc/resolv.conf and friends) into the root at the same paths: every
	// mount that is not a pseudo-filesystem, not under /proc, /sys or /dev,
	// and neither the root nor around it.
	CarryMounts  bool
	ReadOnlyRoot bool
	// Privileged leaves /proc and /sys unmasked and writable.
	Privileged bool

	// Shim makes a small reaper the namespace's PID 1 and the command its
	// child, for commands that are not an init.
	Shim bool
	// TerminalGroup says the caller runs in its terminal's foreground
	// process group and leaves the command there (no Ctty): the terminal
	// sends SIGINT, SIGQUIT, SIGTSTP and SIGWINCH to the command itself, so
	// the shim does not pass them on a second time.
	TerminalGroup bool

	// Exe is the binary re-executed as the stage; /proc/self/exe when empty.
	Exe string
	// Start forks the stage; nil uses syscall.ForkExec and waits for the
	// child itself. A PID 1 passes its reaper's Start so that no other
	// wait4 steals the status.
	Start StartFunc
}

// StartFunc forks and execs argv0 with attr and returns the child's pid and
// a channel that receives its wait status once.
type StartFunc func(argv0 string, argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error)

// Reason is how a process ended.
type Reason int

const (
	Exited   Reason = iota // it exited; Exit.Code is its status
	Killed                 // a signal killed it; Exit.Signal says which
	PowerOff               // the namespace's init was ended by reboot(2) with POWER_OFF or HALT (it died of SIGINT)
	Reboot                 // the namespace's init was ended by reboot(2) with RESTART (it died of SIGHUP)
)

func (r Reason) String() string {
	switch r {
	case Exited:
		return "exited"
	case Killed:
		return "killed"
	case PowerOff:
		return "poweroff"
	case Reboot:
		return "reboot"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Exit is how a process ended.
type Exit struct {
	Reason Reason
	Code   int            // exit status, or 128+signal when a signal ended it
	Signal syscall.Signal // the signal that ended it, if one did
	Status unix.WaitStatus
}

func (e Exit) String() string {
	switch e.Reason {
	case Exited:
		return fmt.Sprintf("exited with status %d", e.Code)
	case Killed:
		return fmt.Sprintf("killed by %s", SignalName(e.Signal))
	case PowerOff:
		return "powered off"
	case Reboot:
		return "rebooted"
	}
	return e.Reason.String()
}

// exitOf reads a wait status. Only the namespace's init tells poweroff from
// reboot: as PID 1 of its namespace nothing else can kill it with SIGINT or
// SIGHUP, while the kernel's reboot(2) there kills it with exactly those.
func exitOf(ws unix.WaitStatus, nsInit bool) Exit {
	e := Exit{Status: ws, Code: 255}
	switch {
	case ws.Exited():
		e.Reason, e.Code = Exited, ws.ExitStatus()
	case ws.Signaled():
		e.Reason, e.Signal, e.Code = Killed, ws.Signal(), 128+int(ws.Signal())
		if nsInit && e.Signal == unix.SIGINT {
			e.Reason = PowerOff
		}
		if nsInit && e.Signal == unix.SIGHUP {
			e.Reason = Reboot
		}
	}
	return e
}

// Process is a running namespace init (from Start) or a command in a
// running namespace (from Join).
type Process struct {
	Pid int // in the caller's PID namespace
	// RootMethod is how the stage entered the root: "pivot_root" or
	// "move" (MS_MOVE and chroot); empty for Join.
	RootMethod string
	// Warnings are what the stage skipped: optional mounts the kernel
	// refused.
	Warnings []string

	nsInit bool
	done   chan struct{}
	exit   Exit

	mu       sync.Mutex // guards pidfd against the close when the process ends
	pidfd    int
	stopOnce sync.Once
}

// Wait blocks until the process ends and says how.
func (p *Process) Wait() Exit {
	<-p.done
	return p.exit
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process: the namespace's init or the shim (which
// passes it on to the command). A process that has ended gets nothing and
// the result is os.ErrProcessDone.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	if p.pidfd >= 0 {
		if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
			return fmt.Errorf("signal %s to pid %d: %w", SignalName(sig), p.Pid, err)
		}
		return nil
	}
	if err := unix.Kill(p.Pid, sig); err != nil {
		return fmt.Errorf("signal %s to pid %d: %w", SignalName(sig), p.Pid, err)
	}
	return nil
}

// Stop sends sig, and SIGKILL after timeout unless the process has ended by
// then. SIGKILL to a namespace's init ends every process in the namespace.
// Stop does not wait.
func (p *Process) Stop(sig syscall.Signal, timeout time.Duration) {
	_ = p.Signal(sig)
	p.stopOnce.Do(func() {
		go func() {
			t := time.NewTimer(timeout)
			defer t.Stop()
			select {
			case <-p.done:
			case <-t.C:
				_ = p.Signal(unix.SIGKILL)
			}
		}()
	})
}

func newProcess(pid, pidfd int, nsInit bool, waitCh <-chan unix.WaitStatus) *Process {
	p := &Process{Pid: pid, pidfd: pidfd, nsInit: nsInit, done: make(chan struct{})}
	go func() {
		ws := <-waitCh
		p.mu.Lock()
		p.exit = exitOf(ws, nsInit)
		if p.pidfd >= 0 {
			unix.Close(p.pidfd)
			p.pidfd = -1
		}
		close(p.done)
		p.mu.Unlock()
	}()
	return p
}

// forkExec is the StartFunc for callers without a reaper of their own.
func forkExec(argv0 string, argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	pid, err := syscall.ForkExec(argv0, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				// Someone else reaped it: no status to give.
				ws = unix.WaitStatus(255 << 8)
			}
			break
		}
		ch <- ws
	}()
	return pid, ch, nil
}

// Start sets up the namespaces and the root, and starts the command. It
// returns once the command runs, or with a *imagespec.StartError when it did not
// start (whose Code is 125, 126 or 127).
func Start(cfg Config) (*Process, error) {
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return nil, &imagespec.StartError{Code: imagespec.ExitNotFound, Err: errors.New("no command")}
	}
	root, err := filepath.Abs(cfg.Root)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("root %s: %w", cfg.Root, err)}
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("root %s: not a directory", cfg.Root)}
	}
	exec, err := newExecSpec(cfg.Command)
	if err != nil {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: err}
	}
	spec := initSpec{
		Root:         root,
		Exec:         exec,
		Hostname:     cfg.Hostname,
		NewIPC:       cfg.NewIPC,
		Dev:          cfg.Dev,
		Binds:        cfg.Binds,
		Tmpfs:        cfg.Tmpfs,
		CarryMounts:  cfg.CarryMounts,
		ReadOnlyRoot: cfg.ReadOnlyRoot,
		Privileged:   cfg.Privileged,
		Shim:         cfg.Shim,

		TerminalGroup: cfg.TerminalGroup,
	}
	for _, b := range spec.Binds {
		if !filepath.IsAbs(b.Source) {
			return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("bind source %s: not an absolute path", b.Source)}
		}
	}
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID)
	if cfg.Hostname != "" || cfg.NewUTS {
		flags |= unix.CLONE_NEWUTS
	}
	if cfg.NewIPC {
		flags |= unix.CLONE_NEWIPC
	}
	sys := &syscall.SysProcAttr{Cloneflags: flags}
	exe := cfg.Exe
	if exe == "" {
		exe = "/proc/self/exe"
	}
	var replies []reply
	p, err := startStage(stageArgs{
		exe:   exe,
		stage: initStageArg,
		spec:  spec,
		stdio: [3]*os.File{cfg.Stdin, cfg.Stdout, cfg.Stderr},
		sys:   sys,
		start: cfg.Start,
	}, true, &replies)
	if err != nil {
		return nil, err
	}
	for _, r := range replies {
		if r.Warning != "" {
			p.Warnings = append(p.Warnings, r.Warning)
		}
		if r.RootMethod != "" {
			p.RootMethod = r.RootMethod
		}
	}
	return p, nil
}

type stageArgs struct {
	exe   string
	stage string
	spec  any
	stdio [3]*os.File
	sys   *syscall.SysProcAttr
	start StartFunc
}

// startStage forks a stage with its spec on fd 3 and reads its replies
// until fd 3 closes: at the command's exec (close-on-exec), or when the
// shim has started it.
func startStage(a stageArgs, nsInit bool, replies *[]reply) (*Process, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("socketpair for the stage: %w", err)}
	}
	parent := os.NewFile(uintptr(fds[0]), "stage")
	child := os.NewFile(uintptr(fds[1]), "stage-child")
	defer parent.Close()
	files := make([]uintptr, 4)
	var opened []*os.File
	for i, f := range a.stdio {
		if f == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				child.Close()
				return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("open %s: %w", os.DevNull, err)}
			}
			opened = append(opened, null)
			f = null
		}
		files[i] = f.Fd()
	}
	files[3] = child.Fd()
	pidfd := -1
	a.sys.PidFD = &pidfd
	start := a.start
	if start == nil {
		start = forkExec
	}
	pid, waitCh, err := start(a.exe, []string{StageName, a.stage}, &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{},
		Files: files,
		Sys:   a.sys,
	})
	child.Close()
	for _, f := range opened {
		f.Close()
	}
	if err != nil {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("start stage %s: %w", a.exe, err)}
	}
	p := newProcess(pid, pidfd, nsInit, waitCh)
	failed := func(err error) (*Process, error) {
		_ = p.Signal(unix.SIGKILL)
		p.Wait()
		return nil, err
	}
	if err := json.NewEncoder(parent).Encode(a.spec); err != nil {
		return failed(&imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("send spec to stage: %w", err)})
	}
	_ = unix.Shutdown(int(parent.Fd()), unix.SHUT_WR)
	dec := json.NewDecoder(parent)
	ready := false
	for {
		var r reply
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return failed(&imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("read stage reply: %w", err)})
		}
		if r.Error != "" {
			// The stage exits with r.Code on its own.
			p.Wait()
			return nil, &imagespec.StartError{Code: r.Code, Err: &remoteError{msg: r.Error, errno: syscall.Errno(r.Errno)}}
		}
		if r.Ready {
			ready = true
		}
		*replies = append(*replies, r)
	}
	if !ready {
		e := p.Wait()
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("stage %s %s before the command started", a.exe, e)}
	}
	return p, nil
}

// remoteError is an error that happened in a stage, with its errno so that
// errors.Is(err, unix.ENOENT) still works.
type remoteError struct {
	msg   string
	errno syscall.Errno
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error {
	if e.errno == 0 {
		return nil
	}
	return e.errno
}
