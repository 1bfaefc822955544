package nsrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/reaper"
)

// The stages are this binary re-executed with one of these as argv[1] and
// their spec on fd 3.
const (
	initStageArg = "--nsrun-init" // PID 1 of the new namespaces
	execStageArg = "--nsrun-exec" // the command, started by the shim or Join
)

const syncFd = 3

// initSpec is what the init stage does, sent as JSON on fd 3.
type initSpec struct {
	Root         string
	Exec         execSpec
	Hostname     string
	NewIPC       bool
	Dev          DevMode
	Binds        []Bind
	Tmpfs        []string
	CarryMounts  bool
	ReadOnlyRoot bool
	Privileged   bool
	Shim         bool
	// TerminalGroup: the command shares a terminal's foreground group with
	// the caller, so the shim does not double what the terminal sends.
	TerminalGroup bool
}

// execSpec is the command to exec, sent as JSON on fd 3; stdio are fds 0-2.
type execSpec struct {
	Argv       []string
	Env        []string
	Dir        string
	UID, GID   uint32
	Groups     []uint32
	Ctty       bool
	LimitCaps  bool   // keep only Caps
	Caps       uint64 // bit n is capability n
	NoNewPrivs bool
}

func newExecSpec(c Command) (execSpec, error) {
	s := execSpec{
		Argv:       c.Argv,
		Env:        c.Env,
		Dir:        c.Dir,
		UID:        c.UID,
		GID:        c.GID,
		Groups:     c.Groups,
		Ctty:       c.Ctty,
		NoNewPrivs: c.NoNewPrivs,
	}
	if s.Dir == "" {
		s.Dir = "/"
	}
	if !path.IsAbs(s.Dir) {
		return s, fmt.Errorf("working directory %s: not an absolute path", s.Dir)
	}
	if c.Capabilities != nil {
		caps, err := ParseCapabilities(c.Capabilities)
		if err != nil {
			return s, err
		}
		s.LimitCaps, s.Caps = true, caps
	}
	return s, nil
}

// reply is a stage's message to its parent on fd 3.
type reply struct {
	Ready      bool   `json:"ready,omitempty"` // the command runs, or is exec'd next
	RootMethod string `json:"root,omitempty"`
	Warning    string `json:"warning,omitempty"`
	Error      string `json:"error,omitempty"`
	Code       int    `json:"code,omitempty"`
	Errno      int    `json:"errno,omitempty"`
}

// Stage runs this package's re-executed stages. A binary that may be
// re-executed by Start or Join calls it first thing in main, and exits with
// code when isStage is true.
func Stage() (code int, isStage bool) {
	if len(os.Args) < 2 {
		return 0, false
	}
	switch os.Args[1] {
	case initStageArg:
		return runStage(initStage), true
	case execStageArg:
		return runStage(execStage), true
	}
	return 0, false
}

// runStage gives a stage its fd 3, reports its error there, and turns a
// panic into an error report instead of a crash.
func runStage(stage func(sync *os.File) (int, error)) (code int) {
	sync := os.NewFile(syncFd, "sync")
	// The command must not inherit fd 3, and its exec closing it tells the
	// parent the exec happened.
	unix.CloseOnExec(syncFd)
	defer func() {
		if r := recover(); r != nil {
			code = ExitSetupFailed
			sendError(sync, fmt.Errorf("stage panic: %v", r), code)
		}
	}()
	code, err := stage(sync)
	if err != nil {
		sendError(sync, err, code)
	}
	return code
}

func send(sync *os.File, r reply) {
	_ = json.NewEncoder(sync).Encode(r)
}

func sendError(sync *os.File, err error, code int) {
	r := reply{Error: err.Error(), Code: code}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		r.Errno = int(errno)
	}
	send(sync, r)
}

// initStage is PID 1 of the new namespaces: it sets up the root and then
// becomes the command, or the shim that runs it.
func initStage(sync *os.File) (int, error) {
	var spec initSpec
	if err := json.NewDecoder(sync).Decode(&spec); err != nil {
		return ExitSetupFailed, fmt.Errorf("read stage spec: %w", err)
	}
	warn := func(msg string) { send(sync, reply{Warning: msg}) }
	method, err := setupRoot(&spec, warn)
	if err != nil {
		return ExitSetupFailed, err
	}
	if spec.Shim {
		return runShim(sync, spec.Exec, method, spec.TerminalGroup)
	}
	send(sync, reply{Ready: true, RootMethod: method})
	return execCommand(spec.Exec)
}

// execStage is the command's own process under the shim or Join.
func execStage(sync *os.File) (int, error) {
	var spec execSpec
	if err := json.NewDecoder(sync).Decode(&spec); err != nil {
		return ExitSetupFailed, fmt.Errorf("read exec spec: %w", err)
	}
	send(sync, reply{Ready: true})
	return execCommand(spec)
}

// runShim is PID 1 for a command that is not an init: it starts the command,
// reaps every process that ends in the namespace, passes signals on, and
// exits with the command's status (128+signal when a signal killed it).
func runShim(sync *os.File, spec execSpec, method string, terminalGroup bool) (int, error) {
	// The shim is the namespace's only reaper: orphans end up here.
	r := reaper.New()
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	var replies []reply
	child, err := startStage(stageArgs{
		exe:   "/proc/self/exe",
		stage: execStageArg,
		spec:  spec,
		stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr},
		sys:   &syscall.SysProcAttr{},
		start: r.Start,
	}, false, &replies)
	if err != nil {
		var se *imagespec.StartError
		if errors.As(err, &se) {
			return se.Code, se.Err
		}
		return ExitSetupFailed, err
	}
	send(sync, reply{Ready: true, RootMethod: method})
	sync.Close()
	go func() {
		for s := range sigs {
			if sig, ok := s.(syscall.Signal); ok && Relayed(sig, terminalGroup && !spec.Ctty) {
				_ = child.Signal(sig)
			}
		}
	}()
	// Leaving ends the namespace: the kernel kills what is left in it.
	return child.Wait().Code, nil
}

// Relayed says whether a supervisor passes sig on to the namespace: not the
// signals about its own children, nor the Go runtime's preemption signal,
// nor, when the command is in the terminal's foreground process group with
// the supervisor, those the terminal already sent it.
func Relayed(sig syscall.Signal, terminalGroup bool) bool {
	switch sig {
	case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
		return false
	case unix.SIGINT, unix.SIGQUIT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGWINCH:
		// The terminal sends these to its whole foreground group.
		return !terminalGroup
	}
	return true
}

// execCommand becomes the command. It returns only when it could not, with
// the code a shell would exit with.
func execCommand(spec execSpec) (int, error) {
	// The bounding set, capset and no_new_privs belong to one thread: the
	// one that execs.
	runtime.LockOSThread()
	if spec.Ctty {
		// A session leader already (EPERM) is fine.
		_, _ = unix.Setsid()
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
			return ExitSetupFailed, fmt.Errorf("make stdin the controlling terminal (TIOCSCTTY): %w", err)
		}
	}
	if err := makeWorkdir(spec.Dir); err != nil {
		return ExitSetupFailed, err
	}
	if err := os.Chdir(spec.Dir); err != nil {
		return ExitSetupFailed, fmt.Errorf("chdir %s: %w", spec.Dir, err)
	}
	argv0, code, err := lookPath(spec.Argv[0], spec.Env)
	if err != nil {
		return code, err
	}
	if spec.LimitCaps {
		if err := dropBoundingSet(spec.Caps); err != nil {
			return ExitSetupFailed, err
		}
	}
	if err := syscall.Setgroups(intsOf(spec.Groups)); err != nil {
		return ExitSetupFailed, fmt.Errorf("setgroups %v: %w", spec.Groups, err)
	}
	if err := syscall.Setgid(int(spec.GID)); err != nil {
		return ExitSetupFailed, fmt.Errorf("setgid %d: %w", spec.GID, err)
	}
	if err := syscall.Setuid(int(spec.UID)); err != nil {
		return ExitSetupFailed, fmt.Errorf("setuid %d: %w", spec.UID, err)
	}
	if spec.LimitCaps && spec.UID == 0 {
		// A non-root uid lost them all at setuid already.
		if err := setCapabilities(spec.Caps); err != nil {
			return ExitSetupFailed, err
		}
	}
	if spec.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return ExitSetupFailed, fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
		}
	}
	err = syscall.Exec(argv0, spec.Argv, spec.Env)
	code = imagespec.ExitNotExecutable
	if errors.Is(err, unix.ENOENT) {
		code = imagespec.ExitNotFound
	}
	return code, fmt.Errorf("exec %s: %w", argv0, err)
}

// makeWorkdir makes the working directory when the image lacks it, as
// docker does.
func makeWorkdir(dir string) error {
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil // a chdir says what else is wrong with it
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make working directory %s: %w", dir, err)
	}
	return nil
}

func intsOf(u []uint32) []int {
	out := make([]int, len(u))
	for i, v := range u {
		out[i] = int(v)
	}
	return out
}

// lookPath finds name as a shell would, in env's PATH, once inside the root.
func lookPath(name string, env []string) (string, int, error) {
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", codeOf(err), fmt.Errorf("%s: %w", name, err)
		}
		return name, 0, nil
	}
	pathVar := imagespec.DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	var notExec error
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, name)
		err := checkExecutable(p)
		if err == nil {
			return p, 0, nil
		}
		if codeOf(err) == imagespec.ExitNotExecutable && notExec == nil {
			notExec = fmt.Errorf("%s: %w", p, err)
		}
	}
	if notExec != nil {
		return "", imagespec.ExitNotExecutable, notExec
	}
	return "", imagespec.ExitNotFound, fmt.Errorf("%s: not found in PATH %s: %w", name, pathVar, unix.ENOENT)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return unix.EISDIR
	}
	if fi.Mode()&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}

func codeOf(err error) int {
	if errors.Is(err, os.ErrNotExist) {
		return imagespec.ExitNotFound
	}
	return imagespec.ExitNotExecutable
}
