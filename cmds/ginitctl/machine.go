package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ginit-dev/ginit/internal/attach"
	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/rundoc"
	"github.com/ginit-dev/ginit/internal/vmrun"
)

// machineFlags are run's flags for the machine (--machine, -m, --cpus,
// --accel), its ports (-p, -P) and the caller's terminal (-i, -t,
// --detach-keys).
type machineFlags struct {
	machine, memory, cpus, accel, detachKeys string
	publish                                  list
	publishAll                               bool
	interactive, tty                         bool
	keys                                     []byte // the detach keys
}

func (f *machineFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.machine, "machine", "", "QEMU's machine type: microvm (virtio-mmio, no PCI: the fastest boot), pc or q35 (default microvm where the run can boot on it, else pc: see below)")
	fs.StringVar(&f.memory, "m", "", "the VM's memory in docker's units: 512m, 1g (default 512m)")
	fs.StringVar(&f.memory, "memory", "", "same as -m")
	fs.StringVar(&f.cpus, "cpus", "", "virtual CPUs: a number, rounded up (default 1)")
	fs.StringVar(&f.accel, "accel", vmrun.AccelAuto, "kvm, tcg, or auto: KVM where a probe VM boots under it within seconds (asked once per host boot), else TCG")
	fs.Var(&f.publish, "p", "publish a guest port: [IP:][HOST:]GUEST[/tcp|udp], through QEMU's user network (repeatable)")
	fs.Var(&f.publish, "publish", "same as -p")
	fs.BoolVar(&f.publishAll, "P", false, "publish each of the image's ExposedPorts on a free port of 127.0.0.1, and print them")
	fs.BoolVar(&f.publishAll, "publish-all", false, "same as -P")
	fs.BoolVar(&f.interactive, "i", false, "type standard input on the VM's console")
	fs.BoolVar(&f.interactive, "interactive", false, "same as -i")
	fs.BoolVar(&f.tty, "t", false, "the console is this terminal: raw mode with -i, so keys such as Ctrl-C reach the workload; its size goes to the guest")
	fs.BoolVar(&f.tty, "tty", false, "same as -t")
	both := boolFunc(func() { f.interactive, f.tty = true, true })
	fs.Var(both, "it", "same as -i -t")
	fs.Var(both, "ti", "same as -i -t")
	fs.StringVar(&f.detachKeys, "detach-keys", attach.DefaultKeys, "with -i -t on a terminal: the keys that detach from the console, leaving the VM running")
}

// boolFunc is a flag without a value that calls a function.
type boolFunc func()

func (b boolFunc) String() string     { return "" }
func (b boolFunc) Set(v string) error { b(); return nil }
func (b boolFunc) IsBoolFlag() bool   { return true }

// options sets o's machine and what the guest learns of the terminal
// (stdin) from the flags.
func (f *machineFlags) options(o *vmrun.Options, stdin *os.File) error {
	m := vmrun.Machine{Accel: f.accel, PublishAll: f.publishAll}
	if err := vmrun.CheckAccel(f.accel); err != nil {
		return err
	}
	var err error
	if f.machine != "" {
		if m.Type, err = qemu.ParseMachine(f.machine); err != nil {
			return fmt.Errorf("--machine: %w", err)
		}
	}
	if f.memory != "" {
		if m.MemoryMB, err = vmrun.MemoryMB(f.memory); err != nil {
			return err
		}
	}
	if f.cpus != "" {
		if m.CPUs, err = vmrun.CPUs(f.cpus); err != nil {
			return err
		}
	}
	for _, spec := range f.publish {
		ports, err := vmrun.ParsePublish(spec)
		if err != nil {
			return err
		}
		m.Publish = append(m.Publish, ports...)
	}
	if f.keys, err = attach.ParseKeys(f.detachKeys); err != nil {
		return err
	}
	o.Machine = m
	o.Terminal = vmrun.Terminal{TTY: f.tty}
	if rows, cols, ok := attach.Size(stdin); f.tty && ok {
		o.Terminal.Size = &rundoc.TTY{Rows: uint16(rows), Cols: uint16(cols)}
	}
	return nil
}

// typing is the caller's standard input joined to a running VM's console
// (-i): what it gives goes to the console's socket, and with -t on a
// terminal, the terminal is raw and the detach keys end the join. The
// console's output still comes from its log. A nil *typing is no -i.
type typing struct {
	restore  func()
	detached chan struct{} // closed when the detach keys were typed
}

// consoleWait bounds the wait for QEMU's console socket, which it makes
// before its monitor, the sign that it runs.
const consoleWait = 5 * time.Second

// typeInto joins stdin to the console of the VM in dir, for -i.
func (f *machineFlags) typeInto(dir vmrun.VMDir, stdin *os.File) (*typing, error) {
	if !f.interactive {
		return nil, nil
	}
	var conn net.Conn
	var err error
	for deadline := time.Now().Add(consoleWait); ; time.Sleep(50 * time.Millisecond) {
		if conn, err = net.Dial("unix", dir.ConsoleSock()); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("VM %s: console: %w", dir.Name(), err)
	}
	t := &typing{restore: func() {}, detached: make(chan struct{})}
	var in io.Reader = stdin
	if f.tty && attach.IsTerminal(stdin) {
		restore, err := attach.Raw(stdin)
		if err != nil {
			conn.Close()
			return nil, err
		}
		resized := make(chan struct{})
		go passResizes(dir, stdin, resized)
		var once sync.Once
		t.restore = func() { once.Do(func() { close(resized); restore() }) }
		in = attach.DetachOn(stdin, f.keys)
	}
	go func() {
		// The socket echoes the console too: the log shows it, the
		// session drains it.
		if err := attach.Session(conn, in, io.Discard); errors.Is(err, attach.ErrDetached) {
			close(t.detached)
		}
		conn.Close()
	}()
	return t, nil
}

// detach closes when the detach keys were typed; never without them.
func (t *typing) detach() <-chan struct{} {
	if t == nil {
		return nil
	}
	return t.detached
}

// done puts the terminal back as it was: before any message, and on every
// way out.
func (t *typing) done() {
	if t != nil {
		t.restore()
	}
}

// resizeWait bounds telling the VM of a new window size: the control
// channel takes one client at a time, and a resize is not worth a wait.
const resizeWait = 2 * time.Second

// passResizes tells the VM's console each new size of the terminal (on
// SIGWINCH) through its control channel, until stop closes; the guest's
// kernel passes it on to the workload as SIGWINCH.
func passResizes(dir vmrun.VMDir, terminal *os.File, stop <-chan struct{}) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	for {
		select {
		case <-stop:
			return
		case <-winch:
		}
		rows, cols, ok := attach.Size(terminal)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), resizeWait)
		if c, err := ctlclient.Dial(ctx, dir.Control()); err == nil {
			_, _ = c.ResizeConsole(ctx, uint16(rows), uint16(cols))
			c.Close()
		}
		cancel()
	}
}
