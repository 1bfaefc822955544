package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/klog"
	"github.com/ginit-dev/ginit/internal/rundoc"
	"github.com/ginit-dev/ginit/internal/shutdown"
)

// newRoot is where the root disk is mounted inside the initramfs.
const newRoot = "/newroot"

// exitBootFailed is the status QEMU sees when the boot itself failed, as
// `docker run` uses 125 for its own failures.
const exitBootFailed = imagespec.ExitRunFailed

func main() {
	b := newBoot(klog.New(os.Stdout))
	b.m = &system{b: b}
	b.run()
	hang()
}

// boot is the state of one boot, in the order it is filled in.
type boot struct {
	log     *klog.Logger
	cfg     bootcfg.Config
	doc     rundoc.Document // the host's run document; zero for none
	m       machine
	signals <-chan os.Signal // stop and user signals sent to PID 1
	ctl     *control         // the boot's phases and the workload, for the control channel

	// kernelLine is /proc/cmdline, without the image's own parameters.
	kernelLine string
}

func newBoot(log *klog.Logger) *boot {
	return &boot{log: log, cfg: bootcfg.Defaults(), ctl: newControl(log)}
}

type phase struct {
	name string
	at   time.Duration // since kernel start
}

func (b *boot) mark(name string) { b.ctl.mark(name) }

func (b *boot) logTiming() {
	var parts []string
	for _, p := range b.ctl.Status().Boot {
		parts = append(parts, fmt.Sprintf("%s=%d", p.Name, p.MS))
	}
	b.log.Infof("boot timing (ms since kernel start): %s", strings.Join(parts, " "))
}

// ending is how a boot ends: the status the host sees, the failure when the
// boot failed (then ginit.onerror applies), and the end a step chose itself
// (a kexec, the reboot after an install, the workload init's own poweroff
// or reboot), which overrides ginit.onexit and ginit.onerror.
type ending struct {
	status int
	err    error
	then   *shutdown.Action
}

func failed(err error) ending { return ending{status: exitBootFailed, err: err} }

func exited(status int) ending { return ending{status: status} }

func endIn(a shutdown.Action, status int) ending { return ending{status: status, then: &a} }

// run is the boot, start to end: the sequence, then the one place that
// ends the machine. In production it does not return (the machine is off);
// with a test's machine it returns after the shutdown.
func (b *boot) run() {
	e := b.sequenceRecovered()
	if e.err != nil {
		b.log.Errorf("boot failed: %v", e.err)
	}
	action, shellFirst := finalAction(b.cfg, e)
	b.delayReboot(e, action)
	if shellFirst {
		if e.err != nil {
			b.log.Errorf("starting a rescue shell on the console; the machine powers off when it exits")
		} else {
			b.log.Infof("ginit.onexit=shell: starting a shell; the machine powers off when it exits")
		}
		if done := b.m.startShell(); done != nil {
			<-done
		}
	}
	b.m.shutdown(action, e.status)
}

// sequenceRecovered is sequence with a panic turned into a boot failure:
// PID 1 must never die of its own bug.
func (b *boot) sequenceRecovered() (e ending) {
	defer func() {
		if r := recover(); r != nil {
			e = failed(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
		}
	}()
	return b.sequence()
}

// finalAction decides how the machine ends: a step's own choice first, then
// ginit.onerror for a failed boot, ginit.onexit otherwise. shellFirst says
// a shell runs on the console before the machine powers off.
func finalAction(cfg bootcfg.Config, e ending) (a shutdown.Action, shellFirst bool) {
	if e.then != nil {
		return *e.then, false
	}
	want := cfg.OnExit
	if e.err != nil {
		want = cfg.OnError
	}
	switch want {
	case bootcfg.Reboot:
		return shutdown.Reboot, false
	case bootcfg.Halt:
		return shutdown.Halt, false
	case bootcfg.Shell:
		return shutdown.PowerOff, true
	}
	return shutdown.PowerOff, false
}

// sequence is the boot, top to bottom. Each step returns; the ending says
// how the machine ends, and run() alone ends it.
func (b *boot) sequence() ending {
	b.mark("init")

	// 1. The pseudo-filesystems, before anything reads /proc or /dev.
	if err := b.m.mountEarly(); err != nil {
		return failed(err)
	}
	b.mark("mounts")

	// 2. The kernel command line, once.
	line, err := b.m.readCmdline()
	if err != nil {
		return failed(fmt.Errorf("read /proc/cmdline: %w", err))
	}
	var warns []bootcfg.Warning
	b.cfg, warns = bootcfg.Parse(withImageParams(line))
	b.kernelLine = line
	switch {
	case b.cfg.Debug:
		b.log.ConsoleLevel = klog.Debug
	case b.cfg.Quiet:
		b.log.ConsoleLevel = klog.Warn
	}
	for _, w := range warns {
		b.log.Warnf("%v", w)
	}
	b.log.Debugf("kernel command line: %s", line)

	// 3. PID 1 duties from here on: one reaper, signals as stop requests,
	// the kernel's RNG ready before anything random.
	b.signals = b.m.becomePID1()

	// 4. Kernel modules: disk and network drivers now, the rest later.
	loadRest := b.m.loadModules(b.cfg)
	b.mark("modules")

	// 4a. The control channel, once its port's driver is loaded: status
	// from now on, the rest once the root is mounted.
	b.m.startControl()

	// 4b. The host's run document in fw_cfg: what to run, as the command
	// line says it, but off /proc/cmdline. A bad one fails the boot: unlike
	// a bad kernel parameter, it may ask for what is unsafe to run without
	// (a read-only root, a volume, a stop signal). Its values are never
	// logged.
	if err := b.readRunDocument(); err != nil {
		return failed(err)
	}

	// 5. Network in the background; the root does not wait for it.
	net := b.m.startNetwork(b.cfg)

	// 6. The root: a disk, or an image pulled over the network; or, with
	// no container at all, the operating system on the machine's disks,
	// which ends the boot in a kexec.
	source, end, err := b.m.obtainRoot(b.cfg, net)
	if err != nil {
		return failed(err)
	}
	if end != nil {
		return *end
	}
	b.log.Infof("root %s mounted at %s", source, newRoot)
	b.ctl.rootMounted()
	// The run document's volumes and tmpfs mounts, so that an entrypoint
	// or working directory in one is found; those below /dev, /proc,
	// /sys, /run and /tmp wait for prepareRoot.
	if err := b.m.mountRunDocument(false); err != nil {
		return failed(err)
	}

	// 7. What to run, as `docker run` would.
	// The run document over the image, the command line over both.
	proc, err := b.m.resolveWorkload(b.doc.Override(), b.cfg.Override())
	if err != nil {
		var se *imagespec.StartError
		if errors.As(err, &se) {
			b.log.Errorf("entrypoint %v", err)
			b.logExit(se.Code)
			return exited(se.Code)
		}
		return failed(err)
	}
	init := detectInit(newRoot, proc.Argv0)
	if err := b.m.prepareRoot(init.IsInit); err != nil {
		return failed(err)
	}
	if err := b.m.mountRunDocument(true); err != nil {
		return failed(err)
	}

	// 8. Wait for the network as long as ginit.netwait allows.
	if net != nil && b.cfg.NetWait > 0 && !net.WaitFirst(b.cfg.NetWait) {
		b.log.Warnf("no DHCP lease within %v; starting the workload without one", b.cfg.NetWait)
	}
	b.mark("network")

	// 9. The workload, and then the drivers it does not wait for (input,
	// the power button, which from then on stops the machine as SIGPWR).
	return b.runWorkload(proc, init, loadRest)
}

// readRunDocument reads and checks the host's run document into b.doc;
// no document is not an error.
func (b *boot) readRunDocument() error {
	data, err := b.m.readRunDocument()
	if err != nil {
		return fmt.Errorf("run document (fw_cfg %s): %w", rundoc.FwCfgName, err)
	}
	if data == nil {
		return nil
	}
	doc, err := rundoc.Parse(data)
	if err != nil {
		return fmt.Errorf("run document (fw_cfg %s): %w", rundoc.FwCfgName, err)
	}
	b.doc = doc
	b.applyRunDocOnError()
	b.log.Infof("run document read from fw_cfg %s (%d env entries)", rundoc.FwCfgName, len(doc.Env))
	return nil
}

// hang is the end of the line when even reboot(2) failed: PID 1 must not
// exit, so it sleeps forever.
func hang() {
	for {
		time.Sleep(time.Hour)
	}
}

// stopSignals are the signals that ask PID 1 to stop the machine.
func isStopRequest(s unix.Signal) bool {
	return s == unix.SIGTERM || s == unix.SIGINT || s == unix.SIGPWR
}
