// Command chrootrun runs a command inside a root directory with its own mount
// and PID namespaces:
//
//	chrootrun ROOT [CMD [ARGS...]]
//
// CMD defaults to /sbin/init. Inside, a fresh /proc is mounted; chrootrun's
// second stage is PID 1 of the new namespace, reaps orphans there, and exits
// with CMD's status (128+signal when it was killed). Signals sent to
// chrootrun are relayed to CMD.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// stage2Arg marks the re-executed child that runs inside the namespaces.
const stage2Arg = "--in-namespace"

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "chrootrun: %v\n", err)
	}
	os.Exit(code)
}

func usage() error {
	return fmt.Errorf("usage: chrootrun ROOT [CMD [ARGS...]]")
}

func run(args []string) (int, error) {
	if len(args) > 0 && args[0] == stage2Arg {
		return stage2(args[1:])
	}
	if len(args) < 1 || args[0] == "-h" || args[0] == "--help" {
		return 2, usage()
	}
	root, err := filepath.Abs(args[0])
	if err != nil {
		return 2, err
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return 2, fmt.Errorf("root %s: not a directory", root)
	}
	cmd := args[1:]
	if len(cmd) == 0 {
		cmd = []string{"/sbin/init"}
	}
	self, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("find own executable: %w", err)
	}
	argv := append([]string{"chrootrun", stage2Arg, root}, cmd...)
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs)
	pid, err := syscall.ForkExec(self, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID},
	})
	if err != nil {
		return 1, fmt.Errorf("start namespaces: %w", err)
	}
	return supervise(pid, sigs), nil
}

// supervise relays signals to pid and returns its exit status.
func supervise(pid int, sigs chan os.Signal) int {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if wpid == pid {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
		if err == unix.ECHILD {
			return 1
		}
		if wpid > 0 {
			continue
		}
		sig := <-sigs
		if s, ok := sig.(syscall.Signal); ok && s != unix.SIGCHLD && s != unix.SIGURG {
			_ = unix.Kill(pid, s)
		}
	}
}

// stage2 runs as PID 1 of the new PID namespace, in the new mount namespace.
func stage2(args []string) (int, error) {
	if len(args) < 2 {
		return 2, usage()
	}
	root, cmd := args[0], args[1:]
	// Keep our mounts out of the parent's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return 1, fmt.Errorf("make mounts private: %w", err)
	}
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return 1, fmt.Errorf("mkdir %s: %w", proc, err)
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return 1, fmt.Errorf("mount proc on %s: %w", proc, err)
	}
	if err := unix.Chroot(root); err != nil {
		return 1, fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := os.Chdir("/"); err != nil {
		return 1, err
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs)
	pid, err := syscall.ForkExec(cmd[0], cmd, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		if err == unix.ENOENT {
			return 127, fmt.Errorf("%s: %w", cmd[0], err)
		}
		return 126, fmt.Errorf("%s: %w", cmd[0], err)
	}
	return supervise(pid, sigs), nil
}
