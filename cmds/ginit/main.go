// Command ginit is PID 1 of a ginit image. It mounts the pseudo-filesystems,
// loads the kernel modules the hardware asks for (each device's modalias
// matched against the image's modules.alias, loaded concurrently), brings the
// network up with DHCP, mounts the root disk made from a container image, and
// runs the image's entrypoint inside it as a child, as `docker run` would run
// the image's config (/.ginit/image.json), reaping every process. When the
// entrypoint exits it stops what is left, syncs, unmounts and powers off (or
// does what ginit.onexit says). SIGTERM, SIGPWR, Ctrl-Alt-Del (SIGINT) and the
// ACPI power button stop the workload with its StopSignal first. It never
// exits: every failure ends in the ginit.onerror action.
//
// Modules listed in /etc/modules-load.d/*.conf that no device can ask for
// (they have no alias, such as filesystems) are loaded unconditionally.
//
// Kernel parameters read from /proc/cmdline:
//
//	root=DEV            root disk: /dev/NAME, LABEL=, UUID=, PARTUUID=, PARTLABEL= (default LABEL=ginit-root)
//	root=docker://REF   diskless: pull the image from a registry into a tmpfs root (needs ocipull in the image)
//	root=oci:URL[:NAME] diskless: the same from an OCI image layout served over HTTP
//	ginit.rootsize=SIZE the diskless root's tmpfs size: 512m, 2g, 50% (default 50% of memory)
//	ginit.install=DISK  write the pulled image onto DISK as oci2disk would, then reboot into it;
//	                    a DISK that already holds the same reference is booted as it is
//	ginit.mode=MODE     container (run the image's entrypoint), boot (kexec the operating
//	                    system found on the disks) or auto (default: container, and boot
//	                    when root= is not given and no container disk appears)
//	osboot.entry=SEL    with ginit.mode=boot: boot only this entry (number, title or id)
//	osboot.append=ARGS  with ginit.mode=boot: added to the booted kernel's command line
//	rootfstype=TYPE     filesystem type (default: probed from the superblock)
//	rootflags=OPTS      mount data for the root filesystem
//	ro, rw              mount the root read-only or read-write (default rw)
//	rootwait[=DUR]      wait for the root device (bare: a day); default 10s
//	rootdelay=SECS      same, in seconds, as the kernel documents it
//	ginit.rootwait=DUR  same, as a duration (500ms, 30s)
//	entrypoint=WORDS    replaces the image's Entrypoint and Cmd (shell words, no expansion)
//	ginit.cmd=WORDS     replaces the image's Cmd
//	ginit.env=K=V       adds or overrides an environment variable (repeatable)
//	ginit.workdir=DIR   working directory (created when missing)
//	ginit.user=USER     user[:group], names or ids from the image's /etc/passwd
//	ip=...              off|dhcp|dhcp6|auto|auto6|DEV:AUTOCONF|CLIENT:SERVER:GW:MASK:HOST:DEV:AUTOCONF:DNS0:DNS1
//	                    (repeatable; default DHCPv4 + IPv6 on every wired link)
//	ginit.netwait=DUR   how long the workload waits for the first lease (default 3s; 0: no wait)
//	ginit.modules=A,B   modules to load beyond /etc/modules-load.d
//	ginit.onexit=ACT    poweroff (default), reboot, halt or shell when the workload ends
//	ginit.onerror=ACT   shell (default), poweroff, reboot or halt when the boot fails
//	ginit.shell=1       also start a shell on the console beside the workload
//	ginit.stoptimeout=DUR grace between the stop signal and SIGKILL (default 10s)
//	ginit.debugexit=P   isa-debug-exit port on QEMU (default 0xf4; off to disable)
//	ginit.debug         log more
//	quiet               log less on the console
//
// Once the workload runs, kernel messages below warning go to dmesg only, not
// into the middle of the workload's console lines; loglevel=, ignore_loglevel,
// debug and ginit.debug keep the kernel's level.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/blockdev"
	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/console"
	"github.com/ginit-dev/ginit/internal/klog"
	"github.com/ginit-dev/ginit/internal/kmod"
	"github.com/ginit-dev/ginit/internal/mounts"
	"github.com/ginit-dev/ginit/internal/netconf"
	"github.com/ginit-dev/ginit/internal/nsrun"
	"github.com/ginit-dev/ginit/internal/powerbtn"
	"github.com/ginit-dev/ginit/internal/reaper"
	"github.com/ginit-dev/ginit/internal/rootpath"
	"github.com/ginit-dev/ginit/internal/shutdown"
	"github.com/ginit-dev/ginit/internal/workload"
)

// newRoot is where the root disk is mounted inside the initramfs.
const newRoot = "/newroot"

// shellPath is the image's shell, for onerror=shell and ginit.shell=1.
const shellPath = "/bin/sh"

// exitBootFailed is the status QEMU sees when the boot itself failed, as
// `docker run` uses 125 for its own failures.
const exitBootFailed = 125

func main() {
	b := &boot{log: klog.New(os.Stdout), cfg: bootcfg.Defaults()}
	b.run()
}

// boot is the state of one boot, in the order it is filled in.
type boot struct {
	log     *klog.Logger
	cfg     bootcfg.Config
	reaper  *reaper.Reaper
	signals chan os.Signal
	phases  []phase
	mounted bool // the root disk is mounted at newRoot
	network *netconf.Network
	// shellSession is the session of the shell ginit started on the
	// console (ginit.shell=1, onexit=shell, rescue), 0 for none: it is
	// no daemon of the workload's.
	shellSession int
}

type phase struct {
	name string
	at   time.Duration // since kernel start
}

func (b *boot) mark(name string) {
	b.phases = append(b.phases, phase{name, klog.Since()})
}

// run is the boot sequence, top to bottom. It never returns.
func (b *boot) run() {
	defer func() {
		if r := recover(); r != nil {
			b.fail(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	b.mark("init")

	// 1. The pseudo-filesystems, before anything reads /proc or /dev.
	for _, m := range mounts.Early() {
		if err := m.Do(); err != nil {
			if m.Optional {
				b.log.Debugf("optional mount skipped: %v", err)
				continue
			}
			b.fail(err)
		}
	}
	b.log = klog.New(os.Stdout) // now /dev/kmsg exists
	b.mark("mounts")

	// 2. The kernel command line, once; scrub what the kernel leaked into
	// our environment, so nothing of it reaches a child.
	line, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		b.fail(fmt.Errorf("read /proc/cmdline: %w", err))
	}
	var warns []bootcfg.Warning
	b.cfg, warns = bootcfg.Parse(strings.TrimSpace(string(line)))
	switch {
	case b.cfg.Debug:
		b.log.ConsoleLevel = klog.Debug
	case b.cfg.Quiet:
		b.log.ConsoleLevel = klog.Warn
	}
	for _, w := range warns {
		b.log.Warnf("%v", w)
	}
	os.Clearenv()
	os.Setenv("PATH", "/bbin:/bin:/usr/bin:/sbin:/usr/sbin")
	b.log.Debugf("kernel command line: %s", strings.TrimSpace(string(line)))

	// 3. PID 1 duties from here on: one reaper, signals as stop requests.
	b.reaper = reaper.New()
	b.signals = make(chan os.Signal, 4)
	signal.Notify(b.signals, unix.SIGTERM, unix.SIGINT, unix.SIGPWR, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2)
	// Ctrl-Alt-Del arrives as SIGINT instead of an instant reboot.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)

	// DHCP and everything random block until the kernel's RNG is ready; wait
	// for it once, here, so no later step hangs on it unseen.
	// getrandom(2) without flags blocks until then; crypto/rand would do the
	// same but carry a whole DRBG into the image.
	start := time.Now()
	_, _ = unix.Getrandom(make([]byte, 1), 0)
	if d := time.Since(start); d > 100*time.Millisecond {
		b.log.Warnf("waited %v for the kernel's random number generator", d.Round(time.Millisecond))
	}

	// 4. Kernel modules the image names, and ginit.modules=.
	moreModules := b.loadModules()
	b.mark("modules")

	// 5. Network in the background; the root disk does not wait for it.
	network := b.startNetwork()
	b.network = network

	// 6. The root: a disk, or an image pulled over the network; with no
	// container at all, the operating system on the machine's disks.
	dev, err := b.obtainRoot(network)
	if err != nil {
		b.fail(err)
	}
	b.log.Infof("root %s mounted at %s", dev, newRoot)

	// 7. What to run, as `docker run` would.
	spec, cred, argv0, err := b.resolveWorkload()
	if err != nil {
		var se *workload.StartError
		if errors.As(err, &se) {
			b.log.Errorf("entrypoint %v", err)
			b.log.Infof("entrypoint exited with status %d", se.Code)
			b.finish(se.Code)
		}
		b.fail(err)
	}
	if err := b.prepareRoot(isInitCommand(argv0)); err != nil {
		b.fail(err)
	}

	// 8. Wait for the network as long as ginit.netwait allows.
	if network != nil && b.cfg.NetWait > 0 {
		if !network.WaitFirst(b.cfg.NetWait) {
			b.log.Warnf("no DHCP lease within %v; starting the workload without one", b.cfg.NetWait)
		}
	}
	b.mark("network")

	// 9. The workload, and then the drivers it does not wait for (input, the
	// power button, which from then on stops the machine as SIGPWR does).
	go func() {
		defer func() {
			if r := recover(); r != nil {
				b.log.Errorf("loading modules: panic: %v", r)
			}
		}()
		moreModules()
		devs := powerbtn.Watch(func() {
			b.log.Infof("power button pressed")
			_ = unix.Kill(1, unix.SIGPWR)
		}, func(err error) { b.log.Debugf("%v", err) })
		if len(devs) > 0 {
			b.log.Debugf("watching the power button (%s)", strings.Join(devs, " "))
		}
	}()
	status := b.runWorkload(spec, cred, argv0)
	b.finish(status)
}

// loadModules loads what the disk and network hardware ask for (coldplug by
// modalias), the image's listed modules that no device could ask for (no
// alias at all), and ginit.modules=. It returns a function that loads the
// drivers of every other device, for later, off the boot's critical path.
func (b *boot) loadModules() (rest func()) {
	rest = func() {}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		b.log.Warnf("uname: %v", err)
		return rest
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	loader, err := kmod.NewLoader(dir)
	if err != nil {
		if len(b.cfg.Modules) > 0 {
			b.log.Warnf("cannot load ginit.modules=%s: %v", strings.Join(b.cfg.Modules, ","), err)
		} else {
			b.log.Debugf("no modules: %v", err)
		}
		return rest
	}
	var aliases []kmod.Alias
	if f, err := os.Open(filepath.Join(dir, "modules.alias")); err == nil {
		aliases = kmod.ParseAlias(f)
		f.Close()
	}
	hasAlias := map[string]bool{}
	for _, a := range aliases {
		hasAlias[a.Module] = true
	}
	extra := append([]string{}, b.cfg.Modules...)
	files, _ := filepath.Glob("/etc/modules-load.d/*.conf")
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			b.log.Warnf("read %s: %v", path, err)
			continue
		}
		for _, m := range kmod.ReadList(f) {
			if !hasAlias[kmod.Name(m)] {
				extra = append(extra, m)
			}
		}
		f.Close()
	}
	report := func(res kmod.ColdplugResult) {
		for _, err := range res.Errors {
			b.log.Warnf("module %v", err)
		}
		if len(res.Orphaned) > 0 {
			var names []string
			for _, d := range res.Orphaned {
				names = append(names, filepath.Base(d.Path)+" ("+d.Modalias+")")
			}
			b.log.Infof("no driver for %d devices: %s", len(names), strings.Join(names, ", "))
		}
	}
	report(loader.Coldplug("/sys", aliases, extra, kmod.BootBus))
	return func() {
		report(loader.Coldplug("/sys", aliases, nil, func(bus string) bool { return !kmod.BootBus(bus) }))
		b.log.Debugf("loaded modules: %s", strings.Join(loader.Loaded(), " "))
	}
}

// startNetwork brings the network up in the background, as ip= says; nil
// when there is nothing to wait for.
func (b *boot) startNetwork() *netconf.Network {
	return netconf.Up(context.Background(), netconf.Params{IP: b.cfg.IP}, b.log)
}

// obtainRoot mounts the root at newRoot and names where it came from. In
// ginit.mode=boot, or in auto mode when root= was not given and no container
// disk appears, it boots the machine's operating system instead and does not
// return.
func (b *boot) obtainRoot(network *netconf.Network) (string, error) {
	if b.cfg.Mode == bootcfg.BootOS {
		b.bootOS(nil)
	}
	if bootcfg.IsImageRef(b.cfg.Root) {
		return b.pullRoot(network)
	}
	dev, err := b.mountRoot()
	if err != nil && b.cfg.Mode == bootcfg.Auto && !b.cfg.RootGiven && errors.Is(err, os.ErrNotExist) {
		b.log.Infof("no container disk: %v; looking for an operating system to boot", err)
		b.bootOS(err)
	}
	return dev, err
}

func (b *boot) mountRoot() (string, error) {
	spec, err := blockdev.ParseSpec(b.cfg.Root)
	if err != nil {
		return "", err
	}
	dev, super, err := blockdev.Wait(spec, b.cfg.RootWait)
	if err != nil {
		return "", err
	}
	b.mark("rootfound")
	fstype := b.cfg.RootFSType
	if fstype == "" {
		fstype = super.Type
	}
	if fstype == "" {
		return "", fmt.Errorf("root device %s: unknown filesystem; give rootfstype=", dev)
	}
	var flags uintptr
	if b.cfg.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := b.mountNewRoot(dev, fstype, flags, b.cfg.RootFlags); err != nil {
		return "", err
	}
	b.mark("rootmounted")
	return dev, nil
}

// mountNewRoot mounts the root filesystem source at newRoot.
func (b *boot) mountNewRoot(source, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", newRoot, err)
	}
	if err := unix.Mount(source, newRoot, fstype, flags, data); err != nil {
		return fmt.Errorf("mount root %s (%s, flags %#x, %q) on %s: %w", source, fstype, flags, data, newRoot, err)
	}
	b.mounted = true
	return nil
}

func (b *boot) resolveWorkload() (workload.Spec, workload.Credential, string, error) {
	img, err := workload.ReadImageConfig(newRoot)
	if err != nil {
		return workload.Spec{}, workload.Credential{}, "", err
	}
	spec, err := workload.Merge(img, b.cfg)
	if err != nil {
		return spec, workload.Credential{}, "", err
	}
	cred, err := workload.ResolveUser(newRoot, spec.User)
	if err != nil {
		return spec, cred, "", err
	}
	if _, ok := workload.Getenv(spec.Env, "HOME"); !ok {
		spec.Env = append(spec.Env, "HOME="+cred.Home)
	}
	if _, ok := workload.Getenv(spec.Env, "TERM"); !ok {
		spec.Env = append(spec.Env, "TERM=linux")
	}
	if spec.WorkingDir == "" {
		spec.WorkingDir = "/"
	}
	dir, err := rootpath.Resolve(newRoot, spec.WorkingDir)
	if err != nil {
		return spec, cred, "", fmt.Errorf("working directory %s: %w", spec.WorkingDir, err)
	}
	// Docker creates a missing WorkingDir; so does ginit.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return spec, cred, "", fmt.Errorf("working directory %s: %w", spec.WorkingDir, err)
	}
	argv0, err := workload.LookPath(newRoot, spec.Argv[0], spec.Env, spec.WorkingDir)
	return spec, cred, argv0, err
}

// prepareRoot gives the root the machine's /dev, /proc, /sys and /run, a
// fresh /tmp, and the DNS settings of the leases.
//
// An init gets its namespaces from nsrun, which mounts its own.
func (b *boot) prepareRoot(forInit bool) error {
	for _, m := range mounts.IntoRoot(newRoot) {
		if forInit {
			break
		}
		if err := m.Do(); err != nil {
			return err
		}
	}
	netconf.IntoRoot(newRoot, b.log)
	return nil
}

func (b *boot) logTiming() {
	var parts []string
	for _, p := range b.phases {
		parts = append(parts, fmt.Sprintf("%s=%d", p.name, p.at.Milliseconds()))
	}
	b.log.Infof("boot timing (ms since kernel start): %s", strings.Join(parts, " "))
}

// runWorkload starts the entrypoint in the root and supervises it until it
// exits, relaying signals; it returns the exit status. An entrypoint that is
// itself an init (systemd, /sbin/init) gets its own mount and PID namespaces
// through nsrun, so its poweroff or reboot ends only its namespace and ginit
// can stop the machine cleanly after it; any other entrypoint runs chrooted
// beside PID 1, which reaps its orphans and keeps its daemons running.
func (b *boot) runWorkload(spec workload.Spec, cred workload.Credential, argv0 string) int {
	tty, ctty, err := console.Open()
	if err != nil {
		b.fail(err)
	}
	defer tty.Close()
	isInit := isInitCommand(argv0)
	stopSignal := unix.SIGTERM
	if isInit && filepath.Base(argv0) == "systemd" {
		// SIGRTMIN+3 is systemd's "halt"; libc's SIGRTMIN is 34.
		stopSignal = unix.Signal(34 + 3)
	}
	if spec.StopSignal != "" {
		if sig, err := nsrun.ParseSignal(spec.StopSignal); err == nil {
			stopSignal = sig
		} else {
			b.log.Warnf("image StopSignal %q: %v; using %s", spec.StopSignal, err, nsrun.SignalName(stopSignal))
		}
	}
	b.mark("workload")
	b.logTiming()
	b.log.Infof("starting %q", spec.Argv)
	b.quietKernelConsole()

	var (
		done   <-chan struct{}
		signal func(unix.Signal)
		status func() int
	)
	if isInit {
		p, err := nsrun.Start(nsrun.Config{
			Root: newRoot,
			Command: nsrun.Command{
				Argv: append([]string{argv0}, spec.Argv[1:]...), Env: spec.Env, Dir: spec.WorkingDir,
				UID: cred.UID, GID: cred.GID, Groups: cred.Groups,
				Stdin: tty, Stdout: tty, Stderr: tty, Ctty: ctty && !b.cfg.Shell,
			},
			// The machine is the init's alone: the host's devices, no masks.
			Dev:        nsrun.DevHost,
			Privileged: true,
			Start:      b.reaper.Start,
		})
		if err != nil {
			return b.startFailed(argv0, err)
		}
		done = p.Done()
		signal = func(s unix.Signal) { _ = p.Signal(s) }
		status = func() int {
			exit := p.Wait()
			switch exit.Reason {
			case nsrun.PowerOff:
				b.log.Infof("the workload's init powered off")
				b.cfg.OnExit = bootcfg.PowerOff
				return 0
			case nsrun.Reboot:
				b.log.Infof("the workload's init rebooted")
				b.cfg.OnExit = bootcfg.Reboot
				return 0
			}
			return exit.Code
		}
	} else {
		attr := &syscall.ProcAttr{
			Dir:   spec.WorkingDir,
			Env:   spec.Env,
			Files: []uintptr{tty.Fd(), tty.Fd(), tty.Fd()},
			Sys: &syscall.SysProcAttr{
				Chroot:  newRoot,
				Setsid:  true,
				Setctty: ctty && !b.cfg.Shell,
				Ctty:    0,
			},
		}
		if cred.UID != 0 || cred.GID != 0 || len(cred.Groups) > 0 {
			attr.Sys.Credential = &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: cred.Groups}
		}
		pid, wait, err := b.reaper.Start(argv0, spec.Argv, attr)
		if err != nil {
			return b.startFailed(argv0, err)
		}
		ended := make(chan struct{})
		var ws unix.WaitStatus
		go func() { ws = <-wait; close(ended) }()
		done = ended
		// The workload leads its own session and process group.
		signal = func(s unix.Signal) { _ = unix.Kill(-pid, s) }
		status = func() int {
			code := reaper.ExitCode(ws)
			if ws.Signaled() {
				b.log.Infof("entrypoint exited with status %d (signal %s)", code, unix.SignalName(ws.Signal()))
			}
			return code
		}
	}
	if b.cfg.Shell {
		b.startShell()
	}
	var kill <-chan time.Time
	for {
		select {
		case <-done:
			code := status()
			b.log.Infof("entrypoint exited with status %d", code)
			if code == 0 && !isInit {
				b.waitDaemons(stopSignal)
			}
			return code
		case sig := <-b.signals:
			s := sig.(syscall.Signal)
			switch s {
			case unix.SIGTERM, unix.SIGINT, unix.SIGPWR:
				b.log.Infof("received %s: sending %s to the workload, SIGKILL in %v", unix.SignalName(s), nsrun.SignalName(stopSignal), b.cfg.StopTimeout)
				signal(stopSignal)
				if kill == nil {
					kill = time.After(b.cfg.StopTimeout)
				}
			default:
				// Reload and user signals go to the workload as they are.
				signal(s)
			}
		case <-kill:
			b.log.Warnf("workload still running after %v: SIGKILL", b.cfg.StopTimeout)
			signal(unix.SIGKILL)
		}
	}
}

// quietKernelConsole keeps the kernel's messages below warning off the
// console once the workload runs: drivers that load late would otherwise
// print into the middle of the workload's lines. They still reach dmesg.
// loglevel=, ignore_loglevel, debug and ginit.debug leave the level alone.
func (b *boot) quietKernelConsole() {
	if b.cfg.Debug {
		return
	}
	for _, p := range b.cfg.Unknown {
		switch p.Key {
		case "loglevel", "ignore_loglevel", "debug":
			return
		}
	}
	if err := os.WriteFile("/proc/sys/kernel/printk", []byte("4"), 0); err != nil {
		b.log.Debugf("kernel console level: %v", err)
	}
}

// startFailed reports an entrypoint that did not start and returns the
// status a shell would give it.
func (b *boot) startFailed(argv0 string, err error) int {
	code := workload.ExitNotExecutable
	var se *nsrun.StartError
	switch {
	case errors.As(err, &se):
		code = se.Code
	case errors.Is(err, unix.ENOENT):
		code = workload.ExitNotFound
	}
	b.log.Errorf("entrypoint %s: %v", argv0, err)
	b.log.Infof("entrypoint exited with status %d", code)
	return code
}

// isInitCommand says whether the entrypoint is a system init, which gets
// namespaces of its own: systemd, or anything called init.
func isInitCommand(argv0 string) bool {
	base := filepath.Base(argv0)
	return base == "systemd" || base == "init"
}

// waitDaemons keeps the machine up while processes an entrypoint left
// behind run, as a daemonizing entrypoint does (nginx without "daemon off").
// A stop request sends them stopSignal and ends the wait after the grace.
func (b *boot) waitDaemons(stopSignal unix.Signal) {
	left := b.daemons()
	if len(left) == 0 {
		return
	}
	b.log.Infof("the entrypoint daemonized: %d processes it left are running; the machine stays up until they exit", len(left))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var deadline <-chan time.Time
	for {
		select {
		case <-tick.C:
			b.reaper.Reap()
			if len(b.daemons()) == 0 {
				b.log.Infof("the daemonized processes have exited")
				return
			}
		case sig := <-b.signals:
			s := sig.(syscall.Signal)
			if s != unix.SIGTERM && s != unix.SIGINT && s != unix.SIGPWR {
				_ = unix.Kill(-1, s)
				continue
			}
			b.log.Infof("received %s: sending %s to the daemonized processes", unix.SignalName(s), unix.SignalName(stopSignal))
			_ = unix.Kill(-1, stopSignal)
			if deadline == nil {
				deadline = time.After(b.cfg.StopTimeout)
			}
		case <-deadline:
			return // end() sends SIGKILL to what is left
		}
	}
}

// daemons lists the processes the workload left running: every user
// process but those of ginit's own shell.
func (b *boot) daemons() []int {
	var left []int
	for _, pid := range shutdown.UserProcesses("/proc") {
		if b.shellSession != 0 && shutdown.Session("/proc", pid) == b.shellSession {
			continue
		}
		left = append(left, pid)
	}
	return left
}

// startShell starts a shell on the console, for ginit.shell=1 and the rescue
// path; it returns the channel its status arrives on, or nil.
func (b *boot) startShell() <-chan unix.WaitStatus {
	tty, ctty, err := console.Open()
	if err != nil {
		b.log.Errorf("shell: %v", err)
		return nil
	}
	defer tty.Close()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{"PATH=/bbin:/bin:/usr/bin:/sbin:/usr/sbin", "HOME=/", "TERM=linux"},
		Files: []uintptr{tty.Fd(), tty.Fd(), tty.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: ctty, Ctty: 0},
	}
	pid, done, err := b.reaper.Start(shellPath, []string{shellPath}, attr)
	if err != nil {
		b.log.Errorf("shell: %v", err)
		return nil
	}
	b.shellSession = pid // it leads its own session (Setsid)
	return done
}

// fail logs a boot failure and applies ginit.onerror. It never returns.
func (b *boot) fail(err error) {
	b.log.Errorf("boot failed: %v", err)
	action := b.cfg.OnError
	if action == bootcfg.Shell {
		b.log.Errorf("starting a rescue shell on the console; the machine powers off when it exits")
		if b.reaper == nil {
			b.reaper = reaper.New()
		}
		if done := b.startShell(); done != nil {
			<-done
		}
		action = bootcfg.PowerOff
	}
	b.end(action, exitBootFailed)
}

// finish stops the machine after the workload ended with status, as
// ginit.onexit says. It never returns.
func (b *boot) finish(status int) {
	action := b.cfg.OnExit
	if action == bootcfg.Shell {
		b.log.Infof("ginit.onexit=shell: starting a shell; the machine powers off when it exits")
		if done := b.startShell(); done != nil {
			<-done
		}
		action = bootcfg.PowerOff
	}
	b.end(action, status)
}

// actionKexec ends the boot in the kernel loaded by kexec_file_load(2).
const actionKexec bootcfg.Action = "kexec"

// end stops every process, unmounts, and calls reboot(2). It never returns.
func (b *boot) end(action bootcfg.Action, status int) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Errorf("panic while shutting down: %v\n%s", r, debug.Stack())
			hang()
		}
	}()
	// Give the leases back before the processes and mounts go.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	b.network.Close(ctx)
	cancel()
	var reap func()
	if b.reaper != nil {
		reap = func() { b.reaper.Reap() }
	}
	if n := shutdown.StopAll(unix.SIGTERM, b.cfg.StopTimeout, reap); n > 0 {
		b.log.Warnf("killed %d processes that outlived the stop timeout", n)
	}
	if b.reaper != nil {
		b.log.Debugf("reaped %d orphaned processes", b.reaper.Orphans())
	}
	unix.Sync()
	if b.mounted {
		stuck, err := mounts.UnmountAll(newRoot)
		if err != nil {
			b.log.Warnf("unmount: %v", err)
		}
		if len(stuck) > 0 {
			b.log.Warnf("could neither unmount nor remount read-only: %s", strings.Join(stuck, " "))
		}
	}
	unix.Sync()
	var a shutdown.Action
	switch action {
	case actionKexec:
		a = shutdown.Kexec
	case bootcfg.Reboot:
		a = shutdown.Reboot
	case bootcfg.Halt:
		a = shutdown.Halt
	default:
		a = shutdown.PowerOff
	}
	b.log.Infof("%s", a)
	if a == shutdown.PowerOff && b.cfg.DebugExitPort != 0 && shutdown.OnQEMU() {
		if err := shutdown.DebugExit(b.cfg.DebugExitPort, status); err != nil {
			b.log.Debugf("debug exit: %v", err)
		}
	}
	if err := a.Reboot(); err != nil {
		b.log.Errorf("%v", err)
	}
	hang()
}

// hang is the end of the line when even reboot(2) failed: PID 1 must not
// exit, so it sleeps forever.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}
