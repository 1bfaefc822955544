package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/console"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/ctlserver"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/klog"
	"github.com/ginit-dev/ginit/internal/nsrun"
	"github.com/ginit-dev/ginit/internal/workload"
)

// control is what the control channel reports and what its execs join:
// written by the boot as it goes, read by the channel's goroutines.
type control struct {
	mu     sync.Mutex
	phase  string
	phases []phase
	proc   process          // the workload, once started
	work   workload.Process // what it runs as; execs take its env, dir and user
	exit   *int
	ready  bool
	srvs   []*ctlserver.Server // one per port, once open
	notify *os.File            // systemd's NOTIFY_SOCKET, for a systemd workload
	log    *klog.Logger
}

func newControl(log *klog.Logger) *control {
	return &control{phase: ctlproto.PhaseBooting, log: log}
}

func (c *control) mark(name string) {
	c.mu.Lock()
	c.phases = append(c.phases, phase{name, klog.Since()})
	c.mu.Unlock()
}

// rootMounted lets the channel accept more than status.
func (c *control) rootMounted() { c.setPhase(ctlproto.PhaseStarting) }

func (c *control) setPhase(p string) {
	c.mu.Lock()
	c.phase = p
	c.mu.Unlock()
}

// started records the running workload and tells the subscribers.
func (c *control) started(proc process, work workload.Process) {
	c.mu.Lock()
	c.phase, c.proc, c.work = ctlproto.PhaseRunning, proc, work
	c.mu.Unlock()
	c.publish(ctlproto.EventMsg{Name: ctlproto.EventStarted, Pid: proc.Pid()})
	go c.probeReady(work.TCPPorts, proc)
}

// probeReady waits until a systemd workload says READY=1 on its notify
// socket, then until each of ports accepts a connection on the loopback
// (the workload shares the machine's network), then marks the workload
// ready; it gives up when the workload ends.
func (c *control) probeReady(ports []int, proc process) {
	defer func() { _ = recover() }()
	c.mu.Lock()
	notify := c.notify
	c.mu.Unlock()
	if notify != nil {
		ready := make(chan struct{})
		go func() {
			defer notify.Close()
			select {
			case <-ready:
			case <-proc.Done():
			}
		}()
		ok := awaitNotifyReady(notify, proc.Pid())
		close(ready)
		if !ok {
			return
		}
		c.log.Infof("systemd reached its default target (READY=1)")
	}
	for pending := ports; len(pending) > 0; {
		if acceptsTCP(pending[0]) {
			pending = pending[1:]
			continue
		}
		select {
		case <-proc.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.mu.Lock()
	c.ready = true
	c.mu.Unlock()
	c.log.Infof("the workload is ready")
	c.publish(ctlproto.EventMsg{Name: ctlproto.EventReady, Pid: proc.Pid()})
}

// notifySocket is the NOTIFY_SOCKET a systemd workload gets, as
// systemd-nspawn gives its container's systemd one: an AF_UNIX datagram
// socket on which systemd, as PID 1, sends READY=1 once it has reached its
// default target. It is abstract ("@"), so it needs no file in the
// workload's root: abstract names belong to the network namespace, which
// the workload shares, not to its mount namespace, whose /run is its own.
const notifySocket = "@ginit/notify"

// notifyEnv opens the notify socket for a systemd workload and returns env
// with NOTIFY_SOCKET naming it; any other init or command gets env as it
// is. Without the socket, readiness is the ports' alone.
func (c *control) notifyEnv(init initInfo, env []string) []string {
	if init.Name != "systemd" {
		return env
	}
	f, err := listenNotify(notifySocket)
	if err != nil {
		c.log.Warnf("systemd's readiness: %v", err)
		return env
	}
	c.mu.Lock()
	c.notify = f
	c.mu.Unlock()
	return imagespec.MergeEnv(env, []string{"NOTIFY_SOCKET=" + notifySocket})
}

// listenNotify binds a datagram socket at name (@ for the abstract
// namespace) that receives its senders' credentials.
func listenNotify(name string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	addr := "\x00" + strings.TrimPrefix(name, "@")
	if !strings.HasPrefix(name, "@") {
		addr = name
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind notify socket %s: %w", name, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("notify socket %s: SO_PASSCRED: %w", name, err)
	}
	// Non-blocking, so that Close ends a read in Go's poller.
	return os.NewFile(uintptr(fd), name), nil
}

// awaitNotifyReady reads sd_notify datagrams from f until pid sends
// READY=1 (true), or f is closed (false). Datagrams from other processes
// are ignored: only the workload's init speaks for it.
func awaitNotifyReady(f *os.File, pid int) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		var n, oobn int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return false
		}
		if rerr != nil {
			continue
		}
		if notifySender(oob[:oobn]) == pid && notifyReady(string(buf[:n])) {
			return true
		}
	}
}

// notifySender is the pid in a datagram's SCM_CREDENTIALS, 0 without one.
func notifySender(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if cred, err := unix.ParseUnixCredentials(&m); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}

// notifyReady says whether an sd_notify message, newline-separated
// VARIABLE=VALUE assignments, says READY=1.
func notifyReady(msg string) bool {
	for _, line := range strings.Split(msg, "\n") {
		if line == "READY=1" {
			return true
		}
	}
	return false
}

// stopping records a stop request, once.
func (c *control) stopping() {
	c.mu.Lock()
	first := c.phase == ctlproto.PhaseRunning
	if first {
		c.phase = ctlproto.PhaseStopping
	}
	c.mu.Unlock()
	if first {
		c.publish(ctlproto.EventMsg{Name: ctlproto.EventStopping})
	}
}

// exited records the workload's status and tells the subscribers.
func (c *control) exited(status int) {
	c.mu.Lock()
	c.phase, c.exit = ctlproto.PhaseExited, &status
	c.mu.Unlock()
	c.publish(ctlproto.EventMsg{Name: ctlproto.EventExited, Exit: &status})
}

func (c *control) publish(ev ctlproto.EventMsg) {
	ev.MS = klog.Since().Milliseconds()
	c.mu.Lock()
	srvs := c.srvs
	c.mu.Unlock()
	for _, srv := range srvs {
		srv.Publish(ev)
	}
}

// Status is ctlserver.Backend's.
func (c *control) Status() ctlproto.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ctlproto.Status{Phase: c.phase, Exit: c.exit, Ready: c.ready}
	for _, p := range c.phases {
		st.Boot = append(st.Boot, ctlproto.BootPhase{Name: p.name, MS: p.at.Milliseconds()})
	}
	if c.proc != nil {
		st.Pid = c.proc.Pid()
	}
	return st
}

// SignalWorkload is ctlserver.Backend's.
func (c *control) SignalWorkload(sig syscall.Signal) error {
	c.mu.Lock()
	proc := c.proc
	c.mu.Unlock()
	if proc == nil {
		return errors.New("signal: the workload has not started")
	}
	proc.Signal(sig)
	return nil
}

// ResizeConsole is ctlserver.Backend's: the size of the host's terminal
// that shows the console, which the kernel passes on as SIGWINCH.
func (cb controlBackend) ResizeConsole(size ctlproto.WinSize) error {
	f, _, err := console.Open()
	if err != nil {
		return fmt.Errorf("resize: %w", err)
	}
	defer f.Close()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: size.Rows, Col: size.Cols}); err != nil {
		return fmt.Errorf("resize the console: %w", err)
	}
	return nil
}

// Stop is ctlserver.Backend's: the power button's path.
func (c *control) Stop() { _ = unix.Kill(1, unix.SIGPWR) }

// controlBackend is the channel's view of the machine: control's state,
// and execs started through PID 1's reaper.
type controlBackend struct {
	*control
	s *system
}

// Exec is ctlserver.Backend's: spec runs beside the workload, in its
// namespaces and root (nsrun.Join, as `chrootrun exec`), with the
// workload's env, working directory and user where spec gives none.
func (cb controlBackend) Exec(spec *ctlproto.ExecSpec, stdio [3]*os.File) (ctlserver.Process, error) {
	cb.mu.Lock()
	proc, work, phase := cb.proc, cb.work, cb.phase
	cb.mu.Unlock()
	if proc == nil || phase == ctlproto.PhaseExited {
		return nil, &imagespec.StartError{Code: imagespec.ExitRunFailed, Err: fmt.Errorf("exec: the workload is %s", phase)}
	}
	cmd := nsrun.Command{
		Argv: spec.Argv,
		Env:  work.Env,
		Dir:  work.WorkingDir,
		UID:  work.Cred.UID, GID: work.Cred.GID, Groups: work.Cred.Groups,
		Stdin: stdio[0], Stdout: stdio[1], Stderr: stdio[2],
		Ctty: spec.TTY,
	}
	if spec.User != "" {
		cred, err := workload.ResolveUser(newRoot, spec.User)
		if err != nil {
			return nil, &imagespec.StartError{Code: imagespec.ExitRunFailed, Err: fmt.Errorf("exec: user %s: %w", spec.User, err)}
		}
		cmd.UID, cmd.GID, cmd.Groups = cred.UID, cred.GID, cred.Groups
		cmd.Env = imagespec.MergeEnv(cmd.Env, []string{"HOME=" + cred.Home})
	}
	cmd.Env = imagespec.MergeEnv(cmd.Env, spec.Env)
	if spec.Dir != "" {
		cmd.Dir = spec.Dir
	}
	p, err := nsrun.Join(proc.Pid(), cmd, nsrun.JoinOptions{Start: cb.s.reaper.Start})
	if err != nil {
		return nil, err
	}
	return execProcess{p}, nil
}

type execProcess struct{ p *nsrun.Process }

func (e execProcess) Signal(sig syscall.Signal) error { return e.p.Signal(sig) }
func (e execProcess) Wait() int                       { return e.p.Wait().Code }

// acceptsTCP says whether something accepts connections on the loopback's
// port: a connect to 127.0.0.1, which ends at once either way. Raw
// syscalls, as net's dialer would carry its resolver into the image.
func acceptsTCP(port int) bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}) == nil
}

// portWait is how long ginit looks for the control port after the boot's
// modules loaded: the host names its ports a moment after the driver binds.
const portWait = 3 * time.Second

// startControl serves the control channel on the org.ginit.control ports
// (the first, and org.ginit.control.N beside it, so that several clients
// can connect at once), when the host gave the machine one, from
// goroutines of their own.
func (s *system) startControl() {
	log := s.b.log
	go func() {
		defer func() {
			if r := recover(); r != nil {
				log.Errorf("control channel: panic: %v", r)
			}
		}()
		go s.serveVsock()
		devs := findPorts("/sys/class/virtio-ports", ctlproto.PortName, portWait)
		if len(devs) == 0 {
			log.Debugf("no %s port: no control channel", ctlproto.PortName)
			return
		}
		for _, dev := range devs {
			f, err := os.OpenFile(dev, os.O_RDWR, 0)
			if err != nil {
				log.Warnf("control channel: %v", err)
				continue
			}
			srv := s.newServer(f)
			go servePort(srv, f, log)
		}
		log.Infof("serving the control channel on %d ports (%s)", len(devs), ctlproto.PortName)
	}()
}

// newServer is a control channel server that writes to w and gets the
// events; dropServer ends its events when its connection has ended.
func (s *system) newServer(w io.Writer) *ctlserver.Server {
	srv := ctlserver.New(controlBackend{s.b.ctl, s}, w, s.b.log.Infof)
	s.b.ctl.mu.Lock()
	s.b.ctl.srvs = append(s.b.ctl.srvs, srv)
	s.b.ctl.mu.Unlock()
	return srv
}

func (s *system) dropServer(srv *ctlserver.Server) {
	c := s.b.ctl
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.srvs {
		if x == srv {
			// A new slice: publish ranges over the old one unlocked.
			c.srvs = append(c.srvs[:i:i], c.srvs[i+1:]...)
			return
		}
	}
}

// servePort serves one port for good: a host connects, disconnects, and
// the next one connects.
func servePort(srv *ctlserver.Server, f *os.File, log *klog.Logger) {
	defer func() {
		if r := recover(); r != nil {
			log.Errorf("control channel %s: panic: %v", f.Name(), r)
		}
	}()
	connected := notifyConnect(f)
	for {
		err := srv.Serve(f)
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			log.Warnf("control channel %s: %v", f.Name(), err)
			time.Sleep(time.Second)
			continue
		}
		// No host on the other end: reads end at once until one
		// connects, which the port signals.
		select {
		case <-connected:
		case <-time.After(hostPoll):
		}
	}
}

// hostPoll is how often ginit looks for a host on the port when no signal
// says one connected.
const hostPoll = 2 * time.Second

// notifyConnect asks the port for SIGIO when its host end connects (and
// when data arrives), so that an idle PID 1 does not poll it; the channel
// receives them.
func notifyConnect(f *os.File) <-chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGIO)
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_, _ = unix.FcntlInt(fd, unix.F_SETOWN, os.Getpid())
			if fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0); err == nil {
				_, _ = unix.FcntlInt(fd, unix.F_SETFL, fl|unix.O_ASYNC)
			}
		})
	}
	return ch
}

// findPorts returns the devices of the virtio-serial ports named name and
// name.N, as their sysfs directories (under sysPorts) name them, waiting
// up to wait for the first. The host adds a device's ports one by one:
// once one is found, it looks again until a look finds no more.
func findPorts(sysPorts, name string, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	var found []string
	for {
		dirs, _ := filepath.Glob(filepath.Join(sysPorts, "vport*"))
		var now []string
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "name"))
			n := strings.TrimSpace(string(b))
			if err == nil && (n == name || strings.HasPrefix(n, name+".")) {
				now = append(now, filepath.Join("/dev", filepath.Base(d)))
			}
		}
		settled := len(now) > 0 && len(now) == len(found)
		found = now
		if settled || time.Now().After(deadline) {
			return found
		}
		time.Sleep(50 * time.Millisecond)
	}
}
