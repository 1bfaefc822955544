package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/console"
	"github.com/ginit-dev/ginit/internal/fwcfg"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/klog"
	"github.com/ginit-dev/ginit/internal/kmod"
	"github.com/ginit-dev/ginit/internal/mounts"
	"github.com/ginit-dev/ginit/internal/netconf"
	"github.com/ginit-dev/ginit/internal/reaper"
	"github.com/ginit-dev/ginit/internal/rundoc"
	"github.com/ginit-dev/ginit/internal/shutdown"
	"github.com/ginit-dev/ginit/internal/workload"
)

// machine is what the boot sequence does to the machine. system is the
// real one; the sequence's tests give a fake.
type machine interface {
	// mountEarly mounts /proc, /sys, /dev and the rest; from then on the
	// log reaches /dev/kmsg too.
	mountEarly() error
	readCmdline() (string, error)
	// becomePID1 scrubs what the kernel leaked into the environment,
	// starts the reaper, takes the stop signals, turns Ctrl-Alt-Del into
	// SIGINT, and waits for the kernel's RNG.
	becomePID1() <-chan os.Signal
	// loadModules loads what the boot waits for and returns the loading
	// of the rest, for later.
	loadModules(cfg bootcfg.Config) (rest func())
	// startControl serves the control channel, when the machine has its
	// port, in the background.
	startControl()
	// startNetwork starts configuring the links as ip= says; nil when there
	// is nothing to wait for.
	startNetwork(cfg bootcfg.Config) network
	// obtainRoot mounts the root at newRoot and says where it came from;
	// or it says how the boot ends instead (a kexec, the reboot after an
	// install, a stop request).
	obtainRoot(cfg bootcfg.Config, net network) (source string, end *ending, err error)
	// readRunDocument returns the run document the host put in fw_cfg;
	// nil when there is none.
	readRunDocument() ([]byte, error)
	// resolveWorkload applies the overrides, later ones winning, to the
	// image's configuration.
	resolveWorkload(overrides ...imagespec.Override) (workload.Process, error)
	// prepareRoot gives the root the machine's /dev, /proc, /sys, /run
	// (not for an init, which gets namespaces that mount their own) and
	// the DNS settings of the leases.
	prepareRoot(forInit bool) error
	// mountRunDocument mounts the run document's volumes and tmpfs into
	// the root: first (late false) those outside the mounts prepareRoot
	// makes, then (late true) those below them, and then it makes the
	// root read-only when the document says so.
	mountRunDocument(late bool) error
	// startWorkload starts the workload in the root, its output on the
	// console.
	startWorkload(p workload.Process, init initInfo) (process, error)
	// afterStart runs once the workload is running: the drivers it does
	// not wait for, the console shell of ginit.shell=1.
	afterStart(loadRest func())
	// waitDaemons keeps the machine up while processes a daemonizing
	// entrypoint left behind run.
	waitDaemons(stop unix.Signal)
	// startShell starts a shell on the console; nil when it cannot.
	startShell() <-chan unix.WaitStatus
	// pause waits d, the console showing why.
	pause(d time.Duration)
	// shutdown stops every process, unmounts and calls reboot(2) with a.
	// It returns only in tests.
	shutdown(a shutdown.Action, status int)
}

// network is the part of netconf.Network the sequence uses.
type network interface {
	WaitFirst(d time.Duration) bool
}

// system is the machine ginit runs on.
type system struct {
	b       *boot
	reaper  *reaper.Reaper
	net     *netconf.Network
	mounted bool // the root is mounted at newRoot
	// shellSession is the session of the shell ginit started on the
	// console (ginit.shell=1, onexit=shell, rescue), 0 for none: it is
	// no daemon of the workload's.
	shellSession int
}

func (s *system) mountEarly() error {
	for _, m := range mounts.Early() {
		if err := m.Do(); err != nil {
			if m.Optional {
				s.b.log.Debugf("optional mount skipped: %v", err)
				continue
			}
			return err
		}
	}
	s.b.log = klog.New(os.Stdout) // now /dev/kmsg exists
	return nil
}

func (s *system) readCmdline() (string, error) {
	line, err := os.ReadFile("/proc/cmdline")
	return strings.TrimSpace(string(line)), err
}

func (s *system) becomePID1() <-chan os.Signal {
	// Nothing the kernel passed as environment reaches a child.
	os.Clearenv()
	os.Setenv("PATH", "/bbin:/bin:/usr/bin:/sbin:/usr/sbin")
	s.reaper = reaper.New()
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, unix.SIGTERM, unix.SIGINT, unix.SIGPWR, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2)
	// Ctrl-Alt-Del arrives as SIGINT instead of an instant reboot.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	// DHCP and everything random block until the kernel's RNG is ready;
	// wait for it once, here, so no later step hangs on it unseen.
	// getrandom(2) without flags blocks until then; crypto/rand would do
	// the same but carry a whole DRBG into the image.
	start := time.Now()
	_, _ = unix.Getrandom(make([]byte, 1), 0)
	if d := time.Since(start); d > 100*time.Millisecond {
		s.b.log.Warnf("waited %v for the kernel's random number generator", d.Round(time.Millisecond))
	}
	return signals
}

func (s *system) loadModules(cfg bootcfg.Config) (rest func()) {
	log := s.b.log
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		log.Warnf("uname: %v", err)
		return func() {}
	}
	policy, warns, err := kmod.NewPolicy("/", unix.ByteSliceToString(uts.Release[:]), cfg.Modules)
	if err != nil {
		if len(cfg.Modules) > 0 {
			log.Warnf("cannot load ginit.modules=%s: %v", strings.Join(cfg.Modules, ","), err)
		} else {
			log.Debugf("no modules: %v", err)
		}
		return func() {}
	}
	for _, w := range warns {
		log.Warnf("%v", w)
	}
	report := func(res kmod.ColdplugResult) {
		warnings, orphans := res.Report()
		for _, w := range warnings {
			log.Warnf("%s", w)
		}
		if orphans != "" {
			log.Infof("%s", orphans)
		}
	}
	report(policy.Boot())
	return func() {
		report(policy.Rest())
		log.Debugf("loaded modules: %s", strings.Join(policy.Loaded(), " "))
	}
}

func (s *system) readRunDocument() ([]byte, error) {
	if !shutdown.OnQEMU() {
		return nil, nil // fw_cfg is QEMU's
	}
	// One byte over the limit, so that Parse names the size.
	data, found, err := fwcfg.Read(rundoc.FwCfgName, rundoc.MaxSize+1)
	if !found {
		data = nil
	}
	return data, err
}

func (s *system) startNetwork(cfg bootcfg.Config) network {
	// A hostname set before the network starts is fixed: DHCP does not
	// replace it, ip='s hostname field does.
	if h := s.b.doc.Hostname; h != "" {
		if err := unix.Sethostname([]byte(h)); err != nil {
			s.b.log.Warnf("run document hostname: sethostname: %v", err)
		}
	}
	s.net = netconf.Up(netParams(cfg, s.b.doc), s.b.log)
	if s.net == nil {
		return nil // no typed nil in the interface
	}
	return s.net
}

func (s *system) resolveWorkload(overrides ...imagespec.Override) (workload.Process, error) {
	return workload.Resolve(newRoot, overrides...)
}

func (s *system) prepareRoot(forInit bool) error {
	if !forInit {
		for _, m := range mounts.IntoRoot(newRoot) {
			if err := m.Do(); err != nil {
				return err
			}
		}
	}
	netconf.IntoRoot(newRoot, s.b.log)
	return nil
}

// mountNewRoot mounts the root filesystem source at newRoot.
func (s *system) mountNewRoot(source, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", newRoot, err)
	}
	if err := unix.Mount(source, newRoot, fstype, flags, data); err != nil {
		return fmt.Errorf("mount root %s (%s, flags %#x, %q) on %s: %w", source, fstype, flags, data, newRoot, err)
	}
	s.mounted = true
	return nil
}

// console opens the console terminal for a child: its file, and whether it
// can be the child's controlling terminal.
func (s *system) console() (*os.File, bool, error) {
	f, ctty, err := console.Open()
	if t := s.b.doc.TTY; err == nil && t != nil {
		// A serial line has no size: the host's terminal's comes in the
		// run document. Without it, programs assume 80x24.
		_ = unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: t.Rows, Col: t.Cols})
	}
	return f, ctty, err
}

func (s *system) startShell() <-chan unix.WaitStatus {
	tty, ctty, err := s.console()
	if err != nil {
		s.b.log.Errorf("shell: %v", err)
		return nil
	}
	defer tty.Close()
	if s.reaper == nil { // the boot failed before becoming PID 1
		s.reaper = reaper.New()
	}
	pid, done, err := s.reaper.Start(shellPath, []string{shellPath}, shellAttr(tty, ctty))
	if err != nil {
		s.b.log.Errorf("shell: %v", err)
		return nil
	}
	s.shellSession = pid // it leads its own session (Setsid)
	return done
}

// daemons lists the processes the workload left running: every user
// process but those of ginit's own shell.
func (s *system) daemons() []int {
	var left []int
	for _, pid := range shutdown.UserProcesses("/proc") {
		if s.shellSession != 0 && shutdown.Session("/proc", pid) == s.shellSession {
			continue
		}
		left = append(left, pid)
	}
	return left
}

func (s *system) waitDaemons(stop unix.Signal) {
	log := s.b.log
	if len(s.daemons()) == 0 {
		return
	}
	log.Infof("the entrypoint daemonized: %d processes it left are running; the machine stays up until they exit", len(s.daemons()))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var deadline <-chan time.Time
	for {
		select {
		case <-tick.C:
			s.reaper.Reap()
			if len(s.daemons()) == 0 {
				log.Infof("the daemonized processes have exited")
				return
			}
		case sig := <-s.b.signals:
			sg := sig.(unix.Signal)
			if !isStopRequest(sg) {
				_ = unix.Kill(-1, sg)
				continue
			}
			log.Infof("received %s: sending %s to the daemonized processes", unix.SignalName(sg), unix.SignalName(stop))
			_ = unix.Kill(-1, stop)
			if deadline == nil {
				deadline = time.After(s.b.cfg.StopTimeout)
			}
		case <-deadline:
			return // shutdown sends SIGKILL to what is left
		}
	}
}

func (s *system) pause(d time.Duration) { time.Sleep(d) }

func (s *system) shutdown(a shutdown.Action, status int) {
	log := s.b.log
	defer func() {
		if r := recover(); r != nil {
			log.Errorf("panic while shutting down: %v", r)
		}
	}()
	// Give the leases back before the processes and mounts go.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	s.net.Close(ctx)
	cancel()
	var reap func()
	if s.reaper != nil {
		reap = func() { s.reaper.Reap() }
	}
	if n := shutdown.StopAll(unix.SIGTERM, s.b.cfg.StopTimeout, reap); n > 0 {
		log.Warnf("killed %d processes that outlived the stop timeout", n)
	}
	if s.reaper != nil {
		log.Debugf("reaped %d orphaned processes", s.reaper.Orphans())
	}
	unix.Sync()
	if s.mounted {
		stuck, err := mounts.UnmountAll(newRoot)
		if err != nil {
			log.Warnf("unmount: %v", err)
		}
		if len(stuck) > 0 {
			log.Warnf("could neither unmount nor remount read-only: %s", strings.Join(stuck, " "))
		}
	}
	unix.Sync()
	log.Infof("%s", a)
	if a == shutdown.PowerOff && s.b.cfg.DebugExitPort != 0 && shutdown.OnQEMU() {
		if err := shutdown.DebugExit(s.b.cfg.DebugExitPort, status); err != nil {
			log.Debugf("debug exit: %v", err)
		}
	}
	// A failure reaches a host that has a pvpanic device (KubeVirt's
	// panicDevices) as a guest panic, once the disks are clean.
	if a == shutdown.PowerOff && status != 0 && shutdown.HasPVPanic() {
		log.Infof("status %d: reporting the failure to the host through pvpanic", status)
		if err := shutdown.ReportFailure(); err != nil {
			log.Warnf("pvpanic: %v", err)
		}
	}
	if err := a.Reboot(); err != nil {
		log.Errorf("%v", err)
	}
}
