// Package qemu boots a kernel and initramfs under QEMU (TCG on these
// machines) and returns the serial console and QEMU's exit status. The VM
// tests and the benchmarks share it.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlproto"
)

// consoleWriter collects the console and fires triggers as text arrives.
type consoleWriter struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	triggers []Trigger
	fired    int // triggers fire in order
	firedAt  []time.Duration
	start    time.Time
	monitor  string
	stdin    io.Writer // the serial console's input
	tee      io.Writer
	err      error
}

func (w *consoleWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.tee != nil {
		_, _ = w.tee.Write(p)
	}
	for w.fired < len(w.triggers) && strings.Contains(w.buf.String(), w.triggers[w.fired].When) {
		w.firedAt = append(w.firedAt, time.Since(w.start))
		if in := w.triggers[w.fired].Input; in != "" && w.stdin != nil {
			if _, err := io.WriteString(w.stdin, in); err != nil && w.err == nil {
				w.err = fmt.Errorf("serial input %q: %w", in, err)
			}
		}
		if cmd := w.triggers[w.fired].Command; cmd != "" {
			if err := sendMonitor(w.monitor, cmd); err != nil && w.err == nil {
				w.err = err
			}
		}
		w.fired++
	}
	return len(p), nil
}

func (w *consoleWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func sendMonitor(sock, command string) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("QEMU monitor %s: %w", sock, err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "%s\n", command); err != nil {
		return fmt.Errorf("QEMU monitor %q: %w", command, err)
	}
	// Let QEMU read the command before the connection closes.
	time.Sleep(200 * time.Millisecond)
	return nil
}

// VM is one boot.
type VM struct {
	Machine        Machine // default PC
	Kernel, Initrd string
	Disk           string // root disk; empty for none
	DiskFormat     string // "raw" (default) or "qcow2"
	DiskBus        string // "virtio" (default) or "nvme" (on microvm, with a PCIe bus)
	Append         string // kernel command line after console=
	NoNet          bool
	// NetOptions are more options for the user-mode network card, such
	// as "tftp=DIR,bootfile=boot.ipxe" for a network boot.
	NetOptions string
	// Reboot lets a guest reboot (QEMU's -no-reboot is left out): a
	// reboot restarts the same kernel, initramfs and command line.
	Reboot  bool
	MemMB   int           // default 256
	CPUs    int           // virtual CPUs; default 1
	Accel   string        // "tcg" (default) or "kvm"
	Timeout time.Duration // default 90s
	Extra   []string      // more QEMU arguments
	// ControlSocket, when set, gives the machine ginit's control channel:
	// a virtio-serial port named org.ginit.control behind a unix socket
	// that QEMU listens on at this path.
	ControlSocket string
	// VsockCID, when set, gives the machine a virtio-vsock device with
	// that guest CID (vhost-vsock: the host needs /dev/vhost-vsock), on
	// which ginit serves the control channel too (ctlproto.VsockPort).
	VsockCID uint32
	// FwCfg maps fw_cfg names (opt/ginit/run) to host files, which the
	// guest reads; unlike -append, their contents are not in QEMU's argv.
	FwCfg map[string]string
	// Tee also gets the console as it arrives.
	Tee io.Writer
	// Stop, when it closes, presses the power button (system_powerdown),
	// as a person stopping the machine would.
	Stop <-chan struct{}
	// With no Kernel, the machine boots from the network card: its PXE
	// firmware loads what the DHCP server's bootfile names.
	// Triggers send QEMU monitor commands when console text appears.
	Triggers []Trigger
	// ConsoleSocket, when set, puts the serial console on a Unix socket
	// that a terminal may attach to (QEMU listens, and does not wait for
	// one), and ConsoleLog logs all its output; standard output then has
	// only QEMU's own messages.
	ConsoleSocket, ConsoleLog string
	// QMP, when set, is a Unix socket QEMU serves its QMP monitor on.
	QMP string
}

// Trigger sends Command to QEMU's monitor, and types Input on the serial
// console, the first time the console shows When, as a person at the
// machine would.
type Trigger struct {
	When    string
	Command string // e.g. "system_powerdown", "sendkey ctrl-alt-delete"; empty: only wait
	Input   string // typed on the serial console, e.g. "echo hi\n"
}

// Result is what a boot left behind.
type Result struct {
	Console  string
	QEMUExit int
	Wall     time.Duration
	// TriggerTimes holds, for each trigger that fired, when its text
	// appeared, since QEMU started: power-on to that point of the boot.
	TriggerTimes []time.Duration
}

// Args returns QEMU's command line for vm.
func (vm VM) Args() []string {
	mem := vm.MemMB
	if mem == 0 {
		mem = 256
	}
	accel, cpus := vm.Accel, vm.CPUs
	if accel == "" {
		accel = "tcg"
	}
	if cpus == 0 {
		cpus = 1
	}
	machine := vm.Machine.orPC()
	args := append(machine.args(vm.DiskBus == "nvme"), "-accel", accel, "-cpu", "max", "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-display", "none", "-monitor", "none",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x01")
	if vm.ConsoleSocket != "" {
		con := "socket,id=con,path=" + esc(vm.ConsoleSocket) + ",server=on,wait=off"
		if vm.ConsoleLog != "" {
			con += ",logfile=" + esc(vm.ConsoleLog) + ",logappend=on"
		}
		args = append(args, "-chardev", con, "-serial", "chardev:con")
	} else {
		args = append(args, "-serial", "stdio")
	}
	if vm.QMP != "" {
		args = append(args, "-qmp", "unix:"+esc(vm.QMP)+",server=on,wait=off")
	}
	if !vm.Reboot {
		args = append(args, "-no-reboot")
	}
	if vm.Kernel != "" {
		args = append(args, "-kernel", vm.Kernel, "-initrd", vm.Initrd, "-append", "console=ttyS0 panic=-1 "+machine.kernelArgs(accel, vm.Extra)+vm.Append)
	} else {
		args = append(args, "-boot", "n")
	}
	format := vm.DiskFormat
	if format == "" {
		format = "raw"
	}
	switch {
	case vm.Disk == "":
	case vm.DiskBus == "nvme":
		args = append(args, "-drive", "file="+esc(vm.Disk)+",if=none,id=root,format="+format, "-device", "nvme,drive=root,serial=ginit")
	default:
		args = append(args, "-drive", "file="+esc(vm.Disk)+",if=none,id=root,format="+format, "-device", machine.Virtio("virtio-blk")+",drive=root")
	}
	if vm.NoNet {
		args = append(args, "-nic", "none")
	} else {
		netdev := "user,id=net0"
		if vm.NetOptions != "" {
			netdev += "," + vm.NetOptions
		}
		args = append(args, "-netdev", netdev, "-device", machine.Virtio("virtio-net")+",netdev=net0")
	}
	names := make([]string, 0, len(vm.FwCfg))
	for name := range vm.FwCfg {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "-fw_cfg", "name="+esc(name)+",file="+esc(vm.FwCfg[name]))
	}
	if vm.ControlSocket != "" {
		args = append(args, ControlArgs(machine, vm.ControlSocket)...)
	}
	if vm.VsockCID != 0 {
		args = append(args, VsockArgs(machine, vm.VsockCID)...)
	}
	return append(args, vm.Extra...)
}

// esc escapes a value in QEMU's option syntax, which doubles a comma.
func esc(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// ControlPorts is how many control channel ports a machine gets: QEMU's
// socket chardev serves one client at a time, so each port is one client
// (an exec, a status query) at once.
const ControlPorts = 4

// ControlSockets are the unix sockets of the control ports whose first
// socket is path: path, then path with "-1", "-2", ... before its extension.
func ControlSockets(path string) []string {
	ext := filepath.Ext(path)
	socks := []string{path}
	for i := 1; i < ControlPorts; i++ {
		socks = append(socks, strings.TrimSuffix(path, ext)+"-"+strconv.Itoa(i)+ext)
	}
	return socks
}

// SupervisorSocket is the unix socket of the control port kept for the
// VM's supervisor, whose first client socket is path: path with
// "-supervisor" before its extension. The supervisor holds it for the VM's
// whole life to hear the workload's exited event, so that it takes none of
// the ports ControlSockets names from exec and ps.
func SupervisorSocket(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-supervisor" + ext
}

// SupervisorPort is the name of the supervisor's control port. ginit
// serves every port whose name starts with ctlproto.PortName.
const SupervisorPort = ctlproto.PortName + ".supervisor"

// ControlArgs are machine m's QEMU arguments for ginit's control channel
// ports (org.ginit.control, org.ginit.control.1, ... and
// org.ginit.control.supervisor) behind the unix sockets ControlSockets(path)
// and SupervisorSocket(path) name, which QEMU listens on without waiting
// for a client.
func ControlArgs(m Machine, path string) []string {
	args := []string{"-device", m.Virtio("virtio-serial") + ",id=ctlbus"}
	port := func(id, sock, name string) {
		args = append(args,
			"-chardev", "socket,id="+id+",path="+esc(sock)+",server=on,wait=off",
			"-device", "virtserialport,bus=ctlbus.0,chardev="+id+",name="+name)
	}
	for i, sock := range ControlSockets(path) {
		name := ctlproto.PortName
		if i > 0 {
			name += "." + strconv.Itoa(i)
		}
		port("ctl"+strconv.Itoa(i), sock, name)
	}
	port("ctlsup", SupervisorSocket(path), SupervisorPort)
	return args
}

// VsockArgs are machine m's QEMU arguments for a virtio-vsock device with
// guest CID cid.
func VsockArgs(m Machine, cid uint32) []string {
	return []string{"-device", m.Virtio("vhost-vsock") + ",guest-cid=" + strconv.FormatUint(uint64(cid), 10)}
}

// pressPowerButton sends system_powerdown once stop closes, unless QEMU
// ended first; QEMU may still be making its monitor socket.
func pressPowerButton(stop, done <-chan struct{}, monitor string, out *consoleWriter) {
	select {
	case <-stop:
	case <-done:
		return
	}
	var err error
	for range 50 {
		if err = sendMonitor(monitor, "system_powerdown"); err == nil {
			return
		}
		select {
		case <-done:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	out.mu.Lock()
	if out.err == nil {
		out.err = err
	}
	out.mu.Unlock()
}

// ErrTimeout is returned when the VM did not stop in time.
var ErrTimeout = errors.New("VM did not stop in time")

// Run boots vm and waits for QEMU to exit.
func (vm VM) Run(ctx context.Context) (Result, error) {
	timeout := vm.Timeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := vm.Args()
	var monitor string
	if len(vm.Triggers) > 0 || vm.Stop != nil {
		dir, err := os.MkdirTemp("", "ginit-qemu-")
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
		monitor = filepath.Join(dir, "monitor.sock")
		for i, a := range args {
			if a == "-monitor" {
				args[i+1] = "unix:" + monitor + ",server,nowait"
			}
		}
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	start := time.Now()
	out := &consoleWriter{triggers: vm.Triggers, monitor: monitor, start: start, tee: vm.Tee}
	cmd.Stdout, cmd.Stderr = out, out
	// The serial console's input is QEMU's standard input (-serial stdio).
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Result{}, err
	}
	defer stdin.Close()
	out.stdin = stdin
	if vm.Stop != nil {
		// The terminal's Ctrl-C goes to its whole process group: keep QEMU
		// out of it, so that Stop, not SIGINT, ends the machine.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		done := make(chan struct{})
		defer close(done)
		go pressPowerButton(vm.Stop, done, monitor, out)
	}
	return out.result(ctx, cmd.Run(), "qemu", timeout)
}

// result is how a run that ended with runErr went: its console, trigger
// times and exit status, or why it failed (a trigger, the timeout, name
// not running at all).
func (w *consoleWriter) result(ctx context.Context, runErr error, name string, timeout time.Duration) (Result, error) {
	w.mu.Lock()
	res := Result{Console: w.buf.String(), Wall: time.Since(w.start), TriggerTimes: w.firedAt}
	err := w.err
	w.mu.Unlock()
	if err != nil {
		return res, err
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%w (%v)", ErrTimeout, timeout)
	}
	var ee *exec.ExitError
	if errors.As(runErr, &ee) {
		res.QEMUExit = ee.ExitCode()
	} else if runErr != nil {
		return res, fmt.Errorf("%s: %w", name, runErr)
	}
	return res, nil
}

// DebugExitStatus decodes QEMU's status into the one ginit wrote to
// isa-debug-exit, or -1 when QEMU ended some other way.
func (r Result) DebugExitStatus() int {
	if r.QEMUExit%2 == 1 {
		return (r.QEMUExit - 1) / 2
	}
	return -1
}

var exitLine = regexp.MustCompile(`ginit: entrypoint exited with status (\d+)`)

// ExitLine returns the status from ginit's console line, or -1.
func (r Result) ExitLine() int { return ExitLine(r.Console) }

// ExitLine returns the status from the last of ginit's exit lines in
// console, or -1.
func ExitLine(console string) int {
	all := exitLine.FindAllStringSubmatch(console, -1)
	if all == nil {
		return -1
	}
	n, err := strconv.Atoi(all[len(all)-1][1])
	if err != nil {
		return -1
	}
	return n
}

var kernelStamp = regexp.MustCompile(`\[\s*(\d+\.\d+)\] (.*)`)

// KernelTime returns the printk timestamp of the first kernel line that
// contains text.
func (r Result) KernelTime(text string) (time.Duration, bool) {
	for _, m := range kernelStamp.FindAllStringSubmatch(r.Console, -1) {
		if bytes.Contains([]byte(m[2]), []byte(text)) {
			f, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				return 0, false
			}
			return time.Duration(f * float64(time.Second)), true
		}
	}
	return 0, false
}

var timingLine = regexp.MustCompile(`ginit: boot timing \(ms since kernel start\): (.*)`)

// Phases returns ginit's boot timing line as phase name to time since
// kernel start, in the order printed.
func (r Result) Phases() ([]string, map[string]time.Duration) {
	m := timingLine.FindStringSubmatch(r.Console)
	if m == nil {
		return nil, nil
	}
	var names []string
	at := map[string]time.Duration{}
	for _, f := range bytes.Fields([]byte(m[1])) {
		k, v, ok := bytes.Cut(f, []byte("="))
		if !ok {
			continue
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			continue
		}
		names = append(names, string(k))
		at[string(k)] = time.Duration(n) * time.Millisecond
	}
	return names, at
}

// RunCommand runs argv, a whole QEMU command line built elsewhere (an
// engine's, such as Nomad's qemu driver), in dir, its console on standard
// output; triggers send their commands to the human monitor at the unix
// socket monitor, which argv opens. It waits for QEMU to exit.
func RunCommand(ctx context.Context, dir string, argv []string, monitor string, triggers []Trigger, timeout time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	out := &consoleWriter{triggers: triggers, monitor: monitor, start: time.Now()}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Result{}, err
	}
	defer stdin.Close()
	out.stdin = stdin
	return out.result(ctx, cmd.Run(), argv[0], timeout)
}
