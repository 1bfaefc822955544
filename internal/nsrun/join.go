package nsrun

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/imagespec"
)

// joinable are the namespaces Join enters, in the order it enters them by
// file when it cannot by pidfd: the mount namespace last, since entering it
// changes what paths mean.
var joinable = []struct {
	name string
	flag int
}{
	{"ipc", unix.CLONE_NEWIPC},
	{"uts", unix.CLONE_NEWUTS},
	{"pid", unix.CLONE_NEWPID},
	{"mnt", unix.CLONE_NEWNS},
}

// JoinOptions are how Join starts its process.
type JoinOptions struct {
	// Exe is the binary whose main calls Stage; /proc/self/exe when empty.
	Exe string
	// Start forks the process; nil uses syscall.ForkExec.
	Start StartFunc
}

// Join runs cmd beside the running namespace init pid: in its mount, PID,
// UTS and IPC namespaces and its root directory. The process is pid's
// sibling, not its child: the caller waits for it.
func Join(pid int, cmd Command, opt JoinOptions) (*Process, error) {
	if len(cmd.Argv) == 0 || cmd.Argv[0] == "" {
		return nil, &imagespec.StartError{Code: imagespec.ExitNotFound, Err: errors.New("no command")}
	}
	spec, err := newExecSpec(cmd)
	if err != nil {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: err}
	}
	type result struct {
		p   *Process
		err error
	}
	res := make(chan result, 1)
	// Entering namespaces changes the calling thread for good: a locked
	// thread, never unlocked, which the runtime ends with its goroutine.
	go func() {
		runtime.LockOSThread()
		p, err := joinOnThread(pid, spec, cmd, opt)
		res <- result{p, err}
	}()
	r := <-res
	return r.p, r.err
}

func joinOnThread(pid int, spec execSpec, cmd Command, opt JoinOptions) (*Process, error) {
	setupErr := func(err error) (*Process, error) {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: err}
	}
	// Capabilities and no_new_privs take the stage: this binary again.
	staged := spec.LimitCaps || spec.NoNewPrivs
	exeFd := -1
	if staged {
		exe := opt.Exe
		if exe == "" {
			exe = "/proc/self/exe"
		}
		// The binary is opened here, as the host sees it, and exec'd from
		// its fd inside, where the host's paths mean nothing.
		exeFile, err := os.Open(exe)
		if err != nil {
			return setupErr(fmt.Errorf("open %s: %w", exe, err))
		}
		defer exeFile.Close()
		// Above the stage's fds 0-3, which the child's dup2s overwrite.
		if exeFd, err = unix.FcntlInt(exeFile.Fd(), unix.F_DUPFD_CLOEXEC, 10); err != nil {
			return setupErr(fmt.Errorf("dup %s: %w", exe, err))
		}
		defer unix.Close(exeFd)
	}
	rootPath := fmt.Sprintf("/proc/%d/root", pid)
	rootFd, err := unix.Open(rootPath, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return setupErr(fmt.Errorf("open %s: %w", rootPath, err))
	}
	defer unix.Close(rootFd)

	flags := 0
	for _, ns := range joinable {
		same, err := sameNamespace(pid, ns.name)
		if err != nil {
			return setupErr(err)
		}
		if !same {
			flags |= ns.flag
		}
	}
	// setns of a mount namespace needs a thread that shares no filesystem
	// attributes with others.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return setupErr(fmt.Errorf("unshare CLONE_FS: %w", err))
	}
	if err := enterNamespaces(pid, flags); err != nil {
		return setupErr(err)
	}
	if err := unix.Fchdir(rootFd); err != nil {
		return setupErr(fmt.Errorf("chdir %s: %w", rootPath, err))
	}
	if err := unix.Chroot("."); err != nil {
		return setupErr(fmt.Errorf("chroot %s: %w", rootPath, err))
	}
	if !staged {
		return startJoined(spec, [3]*os.File{cmd.Stdin, cmd.Stdout, cmd.Stderr}, opt.Start)
	}
	var replies []reply
	return startStage(stageArgs{
		// The child has the same fd table until its exec, so this names
		// the binary opened above; it is close-on-exec.
		exe:   fmt.Sprintf("/proc/self/fd/%d", exeFd),
		stage: execStageArg,
		spec:  spec,
		stdio: [3]*os.File{cmd.Stdin, cmd.Stdout, cmd.Stderr},
		sys:   &syscall.SysProcAttr{},
		start: opt.Start,
	}, false, &replies)
}

// startJoined starts the command from this thread, which is in the
// namespaces and the root already: what the exec stage does, without a
// second start of this binary for each command (tens of milliseconds of
// Go runtime under emulation). Capabilities and no_new_privs, which
// belong to the thread that execs, still take the stage.
func startJoined(spec execSpec, stdio [3]*os.File, start StartFunc) (*Process, error) {
	if err := makeWorkdir(spec.Dir); err != nil {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: err}
	}
	// A relative command is found from the working directory, as the
	// stage finds it; the chdir is this thread's alone (CLONE_FS).
	if err := unix.Chdir(spec.Dir); err != nil {
		return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("chdir %s: %w", spec.Dir, err)}
	}
	argv0, code, err := lookPath(spec.Argv[0], spec.Env)
	if err != nil {
		return nil, &imagespec.StartError{Code: code, Err: err}
	}
	var files []uintptr
	for _, f := range stdio {
		if f == nil {
			// The root's own /dev/null: this thread is inside it.
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				return nil, &imagespec.StartError{Code: ExitSetupFailed, Err: fmt.Errorf("open %s: %w", os.DevNull, err)}
			}
			defer null.Close()
			f = null
		}
		files = append(files, f.Fd())
	}
	pidfd := -1
	sys := &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: spec.UID, Gid: spec.GID, Groups: spec.Groups},
		PidFD:      &pidfd,
	}
	if spec.Ctty {
		sys.Setsid, sys.Setctty = true, true // stdin, fd 0, is the terminal
	}
	if start == nil {
		start = forkExec
	}
	pid, waitCh, err := start(argv0, spec.Argv, &syscall.ProcAttr{Dir: spec.Dir, Env: spec.Env, Files: files, Sys: sys})
	if err != nil {
		code := imagespec.ExitNotExecutable
		if errors.Is(err, unix.ENOENT) {
			code = imagespec.ExitNotFound
		}
		return nil, &imagespec.StartError{Code: code, Err: fmt.Errorf("start %s: %w", argv0, err)}
	}
	return newProcess(pid, pidfd, false, waitCh), nil
}

// enterNamespaces enters pid's namespaces named in flags, all at once
// through a pidfd where the kernel can (5.8 and later), else one by one.
func enterNamespaces(pid, flags int) error {
	if flags == 0 {
		return nil
	}
	if pidfd, err := unix.PidfdOpen(pid, 0); err == nil {
		err = unix.Setns(pidfd, flags)
		unix.Close(pidfd)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("setns pid %d (pidfd, %#x): %w", pid, flags, err)
		}
	}
	for _, ns := range joinable {
		if flags&ns.flag == 0 {
			continue
		}
		p := fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		err = unix.Setns(fd, ns.flag)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("setns %s: %w", p, err)
		}
	}
	return nil
}

// sameNamespace says whether pid is in this process's namespace of a kind.
func sameNamespace(pid int, name string) (bool, error) {
	theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, name))
	if err != nil {
		return false, fmt.Errorf("read namespace of pid %d: %w", pid, err)
	}
	ours, err := os.Readlink("/proc/self/ns/" + name)
	if err != nil {
		return false, fmt.Errorf("read own namespace: %w", err)
	}
	return theirs == ours, nil
}

// Namespaces returns pid's namespaces by kind, as /proc/PID/ns shows them
// ("mnt:[4026532201]").
func Namespaces(pid int) (map[string]string, error) {
	out := map[string]string{}
	for _, ns := range joinable {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name))
		if err != nil {
			return nil, fmt.Errorf("read namespaces of pid %d: %w", pid, err)
		}
		out[ns.name] = l
	}
	return out, nil
}
