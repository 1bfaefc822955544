package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/initsys"
	"github.com/ginit-dev/ginit/internal/nsrun"
	"github.com/ginit-dev/ginit/internal/powerbtn"
	"github.com/ginit-dev/ginit/internal/reaper"
	"github.com/ginit-dev/ginit/internal/shutdown"
	"github.com/ginit-dev/ginit/internal/workload"
)

// shellPath is the image's shell, for onerror=shell and ginit.shell=1.
const shellPath = "/bin/sh"

// process is a running workload, whichever way it was started: an init in
// namespaces of its own (nsrun), or a command chrooted beside PID 1.
type process interface {
	// Done is closed when the process has exited.
	Done() <-chan struct{}
	// Signal sends sig to the workload: the init, or the command's
	// process group.
	Signal(sig unix.Signal)
	// Exit is how it ended, once Done is closed: its status, and for an
	// init that powered off or rebooted its namespace, that end.
	Exit() (status int, then *shutdown.Action)
	// Pid is the process's, in PID 1's namespace.
	Pid() int
}

// initInfo says whether the entrypoint is an init, which gets namespaces of
// its own, and the signal that stops it cleanly.
type initInfo = initsys.Init

// detectInit is initsys's rule: the file argv0 names, links followed inside
// root (Debian's /sbin/init is systemd), and each init's own stop signal.
func detectInit(root, argv0 string) initInfo {
	return initsys.Detect(root, argv0)
}

// runWorkload starts the workload and supervises it until it exits,
// relaying signals: a stop request sends the stop signal (the image's
// StopSignal, or the init's own), then SIGKILL after ginit.stoptimeout.
func (b *boot) runWorkload(p workload.Process, init initInfo, loadRest func()) ending {
	stop := init.StopSignal
	if p.StopSignal != "" {
		if sig, err := nsrun.ParseSignal(p.StopSignal); err == nil {
			stop = sig
		} else {
			b.log.Warnf("image StopSignal %q: %v; using %s", p.StopSignal, err, nsrun.SignalName(stop))
		}
	}
	b.mark("workload")
	b.logTiming()
	b.log.Infof("starting %q", p.Argv)
	p.Env = b.ctl.notifyEnv(init, p.Env)
	proc, err := b.m.startWorkload(p, init)
	if err != nil {
		code := b.startFailed(p.Argv0, err)
		b.ctl.exited(code)
		return exited(code)
	}
	b.ctl.started(proc, p)
	b.m.afterStart(loadRest)
	status, then := b.supervise(proc, stop)
	b.ctl.exited(status)
	b.logExit(status)
	if then != nil {
		return endIn(*then, status)
	}
	if status == 0 && !init.IsInit {
		b.m.waitDaemons(stop)
	}
	return exited(status)
}

// supervise relays signals to proc until it exits.
func (b *boot) supervise(proc process, stop unix.Signal) (int, *shutdown.Action) {
	var kill <-chan time.Time
	for {
		select {
		case <-proc.Done():
			return proc.Exit()
		case sig := <-b.signals:
			s := sig.(syscall.Signal)
			if !isStopRequest(s) {
				// Reload and user signals go to the workload as they are.
				proc.Signal(s)
				continue
			}
			b.log.Infof("received %s: sending %s to the workload, SIGKILL in %v", unix.SignalName(s), nsrun.SignalName(stop), b.cfg.StopTimeout)
			b.ctl.stopping()
			proc.Signal(stop)
			if kill == nil {
				kill = time.After(b.cfg.StopTimeout)
			}
		case <-kill:
			b.log.Warnf("workload still running after %v: SIGKILL", b.cfg.StopTimeout)
			proc.Signal(unix.SIGKILL)
		}
	}
}

// quietKernelConsole keeps the kernel's messages below warning off the
// console once the workload runs: drivers that load late would otherwise
// print into the middle of the workload's lines. They still reach dmesg.
// loglevel=, ignore_loglevel, debug and ginit.debug leave the level alone.
func (s *system) quietKernelConsole() {
	if s.b.cfg.Debug || s.b.cfg.KeepKernelLogLevel {
		return
	}
	if err := os.WriteFile("/proc/sys/kernel/printk", []byte("4"), 0); err != nil {
		s.b.log.Debugf("kernel console level: %v", err)
	}
}

// logExit prints the workload's status as the one line hosts read off the
// console (ginitctl, qemu.ExitLine): the only source of a status 0 they
// trust, since QEMU failing on its own also exits as isa-debug-exit's 0.
func (b *boot) logExit(status int) {
	b.log.Statusf("entrypoint exited with status %d", status)
}

// startFailed reports an entrypoint that did not start and returns the
// status a shell would give it.
func (b *boot) startFailed(argv0 string, err error) int {
	code := imagespec.ExitNotExecutable
	var se *imagespec.StartError
	switch {
	case errors.As(err, &se):
		code = se.Code
	case errors.Is(err, unix.ENOENT):
		code = imagespec.ExitNotFound
	}
	b.log.Errorf("entrypoint %s: %v", argv0, err)
	b.logExit(code)
	return code
}

// startWorkload starts the entrypoint in the root. An init (systemd,
// /sbin/init) gets its own mount and PID namespaces through nsrun, so its
// poweroff or reboot ends only its namespace and ginit stops the machine
// cleanly after it; any other entrypoint runs chrooted beside PID 1, which
// reaps its orphans and keeps its daemons running.
func (s *system) startWorkload(p workload.Process, init initInfo) (process, error) {
	s.quietKernelConsole()
	tty, ctty, err := s.console()
	if err != nil {
		return nil, err
	}
	defer tty.Close()
	// With ginit.shell=1 the shell takes the console as its terminal.
	ctty = ctty && !s.b.cfg.Shell
	if init.IsInit {
		proc, err := nsrun.Start(nsrun.Config{
			Root: newRoot,
			Command: nsrun.Command{
				Argv: append([]string{p.Argv0}, p.Argv[1:]...), Env: p.Env, Dir: p.WorkingDir,
				UID: p.Cred.UID, GID: p.Cred.GID, Groups: p.Cred.Groups,
				Stdin: tty, Stdout: tty, Stderr: tty, Ctty: ctty,
			},
			// The machine is the init's alone: the host's devices, no masks.
			Dev:        nsrun.DevHost,
			Privileged: true,
			Start:      s.reaper.Start,
		})
		if err != nil {
			return nil, err
		}
		return initProcess{proc, s.b}, nil
	}
	attr := &syscall.ProcAttr{
		Dir:   p.WorkingDir,
		Env:   p.Env,
		Files: []uintptr{tty.Fd(), tty.Fd(), tty.Fd()},
		Sys: &syscall.SysProcAttr{
			Chroot:  newRoot,
			Setsid:  true,
			Setctty: ctty,
			Ctty:    0,
		},
	}
	if c := p.Cred; c.UID != 0 || c.GID != 0 || len(c.Groups) > 0 {
		attr.Sys.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
	}
	pid, wait, err := s.reaper.Start(p.Argv0, p.Argv, attr)
	if err != nil {
		return nil, err
	}
	c := &childProcess{pid: pid, done: make(chan struct{}), b: s.b}
	go func() { c.ws = <-wait; close(c.done) }()
	return c, nil
}

// restGrace is how long the drivers the workload does not wait for load at
// idle priority before they compete for the CPU like anything else, so that
// a busy workload cannot keep the power button dead.
const restGrace = time.Second

// afterStart loads the drivers the workload does not wait for, then
// watches the power button, which from then on stops the machine as SIGPWR
// does; and starts the console shell of ginit.shell=1. The drivers load at
// idle priority for restGrace: signed modules take a CPU's time under
// emulation, and on one CPU they held the workload's first line back by a
// fifth of a second.
func (s *system) afterStart(loadRest func()) {
	log := s.b.log
	go func() {
		defer func() {
			if r := recover(); r != nil {
				log.Errorf("loading modules: panic: %v", r)
			}
		}()
		// The priority is this thread's; locked, the thread ends with
		// the goroutine and takes its priority along.
		runtime.LockOSThread()
		done := idleFor(restGrace, func(err error) { log.Debugf("driver loading priority: %v", err) })
		loadRest()
		devs := powerbtn.Watch(func() {
			log.Infof("power button pressed")
			_ = unix.Kill(1, unix.SIGPWR)
		}, func(err error) { log.Debugf("%v", err) })
		done()
		if len(devs) > 0 {
			log.Debugf("watching the power button (%s)", strings.Join(devs, " "))
		}
	}()
	if s.b.cfg.Shell {
		s.startShell()
	}
}

// idleFor puts the calling thread under SCHED_IDLE, where it runs only when
// nothing else wants the CPU, and back under SCHED_NORMAL after d unless
// done was called first. The caller keeps its goroutine locked to the
// thread.
func idleFor(d time.Duration, report func(error)) (done func()) {
	tid := unix.Gettid()
	set := func(policy uint32) {
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: policy}
		if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
			report(fmt.Errorf("sched_setattr(%d, policy %d): %w", tid, policy, err))
		}
	}
	set(unix.SCHED_IDLE)
	var mu sync.Mutex
	finished := false
	t := time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if !finished { // the thread is still there
			set(unix.SCHED_NORMAL)
		}
	})
	return func() {
		mu.Lock()
		finished = true
		mu.Unlock()
		t.Stop()
	}
}

// initProcess is an init running in namespaces of its own.
type initProcess struct {
	p *nsrun.Process
	b *boot
}

func (i initProcess) Done() <-chan struct{}  { return i.p.Done() }
func (i initProcess) Pid() int               { return i.p.Pid }
func (i initProcess) Signal(sig unix.Signal) { _ = i.p.Signal(sig) }

func (i initProcess) Exit() (int, *shutdown.Action) {
	exit := i.p.Wait()
	var a shutdown.Action
	switch exit.Reason {
	case nsrun.PowerOff:
		i.b.log.Infof("the workload's init powered off")
		a = shutdown.PowerOff
	case nsrun.Reboot:
		i.b.log.Infof("the workload's init rebooted")
		a = shutdown.Reboot
	default:
		return exit.Code, nil
	}
	return 0, &a
}

// childProcess is a command chrooted beside PID 1, leading its own session
// and process group.
type childProcess struct {
	pid  int
	done chan struct{}
	ws   unix.WaitStatus // set before done closes
	b    *boot
}

func (c *childProcess) Done() <-chan struct{}  { return c.done }
func (c *childProcess) Pid() int               { return c.pid }
func (c *childProcess) Signal(sig unix.Signal) { _ = unix.Kill(-c.pid, sig) }

func (c *childProcess) Exit() (int, *shutdown.Action) {
	code := reaper.ExitCode(c.ws)
	if c.ws.Signaled() {
		c.b.log.Infof("entrypoint exited with status %d (signal %s)", code, unix.SignalName(c.ws.Signal()))
	}
	return code, nil
}

// shellAttr starts a shell on tty, leading its own session with tty as its
// controlling terminal where tty can be one.
func shellAttr(tty *os.File, ctty bool) *syscall.ProcAttr {
	return &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{"PATH=/bbin:/bin:/usr/bin:/sbin:/usr/sbin", "HOME=/", "TERM=linux"},
		Files: []uintptr{tty.Fd(), tty.Fd(), tty.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: ctty, Ctty: 0},
	}
}
