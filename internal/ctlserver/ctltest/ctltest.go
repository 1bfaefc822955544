// Package ctltest serves the control channel in tests: a Backend that runs
// execs as host processes, and a server for it on a pipe.
package ctltest

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/ctlserver"
	"github.com/ginit-dev/ginit/internal/imagespec"
)

// Machine is a Backend that runs execs as host processes (no VM, no
// namespaces) and records what else it is asked. Lock Mu to read its fields
// while a server uses it.
type Machine struct {
	Mu      sync.Mutex
	Phase   string
	Ready   bool
	Stopped int
	Signals []syscall.Signal
	Sizes   []ctlproto.WinSize
	Execs   []*ctlproto.ExecSpec
	Procs   []*HostProcess
}

func (f *Machine) Status() ctlproto.Status {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	return ctlproto.Status{Phase: f.Phase, Ready: f.Ready, Pid: 42, Boot: []ctlproto.BootPhase{{Name: "init", MS: 300}}}
}

// SetPhase sets the phase Status gives.
func (f *Machine) SetPhase(p string) {
	f.Mu.Lock()
	f.Phase = p
	f.Mu.Unlock()
}

func (f *Machine) Exec(spec *ctlproto.ExecSpec, stdio [3]*os.File) (ctlserver.Process, error) {
	f.Mu.Lock()
	f.Execs = append(f.Execs, spec)
	f.Mu.Unlock()
	if spec.Argv[0] == "missing" {
		return nil, &imagespec.StartError{Code: imagespec.ExitNotFound, Err: errors.New("exec missing: no such file")}
	}
	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, spec.Env...)
	// nil is /dev/null, as the real machine has it.
	if stdio[0] != nil {
		cmd.Stdin = stdio[0]
	}
	cmd.Stdout, cmd.Stderr = stdio[1], stdio[2]
	if spec.TTY {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	if err := cmd.Start(); err != nil {
		return nil, &imagespec.StartError{Code: imagespec.ExitNotExecutable, Err: err}
	}
	p := &HostProcess{Spec: spec, Cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		p.Code = ws.ExitStatus()
		if ws.Signaled() {
			p.Code = 128 + int(ws.Signal())
		}
		close(p.done)
	}()
	f.Mu.Lock()
	f.Procs = append(f.Procs, p)
	f.Mu.Unlock()
	return p, nil
}

func (f *Machine) SignalWorkload(sig syscall.Signal) error {
	f.Mu.Lock()
	f.Signals = append(f.Signals, sig)
	f.Mu.Unlock()
	return nil
}

func (f *Machine) ResizeConsole(size ctlproto.WinSize) error {
	f.Mu.Lock()
	f.Sizes = append(f.Sizes, size)
	f.Mu.Unlock()
	return nil
}

func (f *Machine) Stop() {
	f.Mu.Lock()
	f.Stopped++
	f.Mu.Unlock()
}

// HostProcess is an exec that Machine started.
type HostProcess struct {
	Spec *ctlproto.ExecSpec
	Cmd  *exec.Cmd
	done chan struct{}
	Code int // once Wait returned
}

func (p *HostProcess) Signal(sig syscall.Signal) error { return p.Cmd.Process.Signal(sig) }

// Done is closed once the process has ended.
func (p *HostProcess) Done() <-chan struct{} { return p.done }

func (p *HostProcess) Wait() int { <-p.done; return p.Code }

// Serve starts a server for m on one end of a pipe and returns the other
// end; the test's cleanup closes both.
func Serve(t *testing.T, m *Machine) (net.Conn, *ctlserver.Server) {
	t.Helper()
	guest, host := net.Pipe()
	srv := ctlserver.New(m, guest, t.Logf)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(guest) }()
	t.Cleanup(func() { host.Close(); guest.Close(); <-done })
	return host, srv
}

// Buffer collects output that a test waits for: a bytes.Buffer that a
// command's output and a test may use at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is the process of the exec whose argv ends with last, nil before
// it started.
func (f *Machine) Proc(last string) *HostProcess {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for _, p := range f.Procs {
		if argv := p.Spec.Argv; argv[len(argv)-1] == last {
			return p
		}
	}
	return nil
}

// WaitFor waits until the output holds want; the test's deadline bounds it.
func (s *Buffer) WaitFor(t *testing.T, want string) {
	t.Helper()
	for {
		got := s.String()
		if strings.Contains(got, want) {
			return
		}
		if dl, ok := t.Deadline(); ok && time.Until(dl) < 5*time.Second {
			t.Fatalf("output %q never held %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
