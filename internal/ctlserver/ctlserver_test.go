package ctlserver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/imagespec"
)

// fakeMachine runs execs as host processes: no VM, no namespaces.
type fakeMachine struct {
	mu      sync.Mutex
	phase   string
	ready   bool
	stopped int
	signals []syscall.Signal
	sizes   []ctlproto.WinSize
	execs   []*ctlproto.ExecSpec
	procs   []*hostProcess
}

func (f *fakeMachine) Status() ctlproto.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return ctlproto.Status{Phase: f.phase, Ready: f.ready, Pid: 42, Boot: []ctlproto.BootPhase{{Name: "init", MS: 300}}}
}

func (f *fakeMachine) setPhase(p string) {
	f.mu.Lock()
	f.phase = p
	f.mu.Unlock()
}

func (f *fakeMachine) Exec(spec *ctlproto.ExecSpec, stdio [3]*os.File) (Process, error) {
	f.mu.Lock()
	f.execs = append(f.execs, spec)
	f.mu.Unlock()
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
	p := &hostProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		p.code = ws.ExitStatus()
		if ws.Signaled() {
			p.code = 128 + int(ws.Signal())
		}
		close(p.done)
	}()
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.mu.Unlock()
	return p, nil
}

func (f *fakeMachine) SignalWorkload(sig syscall.Signal) error {
	f.mu.Lock()
	f.signals = append(f.signals, sig)
	f.mu.Unlock()
	return nil
}

func (f *fakeMachine) ResizeConsole(size ctlproto.WinSize) error {
	f.mu.Lock()
	f.sizes = append(f.sizes, size)
	f.mu.Unlock()
	return nil
}

func (f *fakeMachine) Stop() {
	f.mu.Lock()
	f.stopped++
	f.mu.Unlock()
}

type hostProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	code int
}

func (p *hostProcess) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }
func (p *hostProcess) Wait() int                       { <-p.done; return p.code }

// serve starts a server on one end of a pipe and returns the other end.
func serve(t *testing.T, m *fakeMachine) (net.Conn, *Server) {
	t.Helper()
	guest, host := net.Pipe()
	srv := New(m, guest, t.Logf)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(guest) }()
	t.Cleanup(func() { host.Close(); guest.Close(); <-done })
	return host, srv
}

func connect(t *testing.T, conn net.Conn) *ctlclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ctlclient.New(ctx, conn)
	if err != nil {
		t.Fatalf("hello: %v", err)
	}
	return c
}

func run(t *testing.T, c *ctlclient.Client, spec ctlproto.ExecSpec, stdin string) (int, string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	var in *strings.Reader
	if spec.Stdin {
		in = strings.NewReader(stdin)
	}
	var e *ctlclient.Exec
	var err error
	if in != nil {
		e, err = c.Exec(spec, in, &out, &errOut)
	} else {
		e, err = c.Exec(spec, nil, &out, &errOut)
	}
	if err != nil {
		t.Fatalf("Exec %q: %v", spec.Argv, err)
	}
	code, err := e.Wait()
	return code, out.String(), errOut.String(), err
}

func TestExec(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, _ := serve(t, m)
	c := connect(t, conn)
	for _, tc := range []struct {
		name      string
		spec      ctlproto.ExecSpec
		stdin     string
		code      int
		out, errs string
		startErr  bool
	}{
		{"output and 0", ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo out; echo err >&2"}}, "", 0, "out\n", "err\n", false},
		{"status 42", ctlproto.ExecSpec{Argv: []string{"sh", "-c", "exit 42"}}, "", 42, "", "", false},
		{"env", ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo $GREETING"}, Env: []string{"GREETING=hi"}}, "", 0, "hi\n", "", false},
		{"stdin to eof", ctlproto.ExecSpec{Argv: []string{"wc", "-c"}, Stdin: true}, strings.Repeat("x", 100000), 0, "100000\n", "", false},
		{"no stdin is /dev/null", ctlproto.ExecSpec{Argv: []string{"cat"}}, "", 0, "", "", false},
		{"killed is 128+signal", ctlproto.ExecSpec{Argv: []string{"sh", "-c", "kill -9 $$"}}, "", 137, "", "", false},
		{"not found", ctlproto.ExecSpec{Argv: []string{"missing"}}, "", 127, "", "", true},
		{"big output", ctlproto.ExecSpec{Argv: []string{"head", "-c", "300000", "/dev/zero"}}, "", 0, strings.Repeat("\x00", 300000), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs, err := run(t, c, tc.spec, tc.stdin)
			var se *ctlclient.StartError
			if tc.startErr != errors.As(err, &se) || (!tc.startErr && err != nil) {
				t.Fatalf("Wait error = %v; want a start error: %v", err, tc.startErr)
			}
			if code != tc.code || out != tc.out || errs != tc.errs {
				t.Errorf("got %d, stdout %.40q, stderr %q; want %d, %.40q, %q", code, out, errs, tc.code, tc.out, tc.errs)
			}
		})
	}
}

// Sessions run side by side on one connection.
func TestConcurrentExecs(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, _ := serve(t, m)
	c := connect(t, conn)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			e, err := c.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", "sleep 0.1; echo $N"}, Env: []string{"N=" + string(rune('a'+i))}}, nil, &out, nil)
			if err != nil {
				t.Errorf("Exec: %v", err)
				return
			}
			if code, err := e.Wait(); code != 0 || err != nil || out.String() != string(rune('a'+i))+"\n" {
				t.Errorf("exec %d: %d, %v, %q", i, code, err, out.String())
			}
		}()
	}
	wg.Wait()
}

func TestSignalExec(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, _ := serve(t, m)
	c := connect(t, conn)
	var out syncBuffer
	e, err := c.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done"}}, nil, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "ready\n")
	if err := e.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := e.Wait(); code != 3 || err != nil || !strings.Contains(out.String(), "got TERM") {
		t.Errorf("after SIGTERM: %d, %v, %q; want 3 and the trap's line", code, err, out.String())
	}
}

// A terminal: the command sees one, keys typed with CR end a line, and a
// resize reaches it.
func TestExecTTY(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, _ := serve(t, m)
	c := connect(t, conn)
	var out syncBuffer
	pr, pw, _ := os.Pipe()
	defer pw.Close()
	e, err := c.Exec(ctlproto.ExecSpec{
		Argv: []string{"sh", "-c", `test -t 0 && echo tty; stty size; read line; echo "line=$line"; trap 'stty size' WINCH; until read x; do :; done`},
		TTY:  true, Stdin: true, Size: &ctlproto.WinSize{Rows: 30, Cols: 100},
	}, pr, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "30 100")
	pw.WriteString("hello\r")
	waitFor(t, &out, "line=hello")
	if err := e.Resize(40, 120); err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "40 120")
	pw.WriteString("bye\r")
	if code, err := e.Wait(); code != 0 || err != nil {
		t.Errorf("Wait = %d, %v; output %q", code, err, out.String())
	}
	if !strings.Contains(out.String(), "tty\r\n") {
		t.Errorf("output %q; want the command to see a terminal", out.String())
	}
}

func TestStatusStopSignalEvents(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, srv := serve(t, m)
	c := connect(t, conn)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.Phase != ctlproto.PhaseRunning || st.Pid != 42 || len(st.Boot) != 1 {
		t.Errorf("Status = %+v, %v", st, err)
	}
	if _, err := c.Signal(ctx, syscall.SIGUSR1); err != nil {
		t.Errorf("Signal: %v", err)
	}
	got := make(chan []string, 1)
	subscribed := make(chan struct{})
	go func() {
		var names []string
		err := c.Events(ctx, func(st *ctlproto.Status, ev *ctlproto.EventMsg) {
			if st != nil {
				names = append(names, "status:"+st.Phase)
				close(subscribed)
			} else {
				names = append(names, ev.Name)
			}
		})
		if err != nil {
			names = append(names, err.Error())
		}
		got <- names
	}()
	<-subscribed
	if _, err := c.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	srv.Publish(ctlproto.EventMsg{Name: ctlproto.EventStopping})
	code := 0
	srv.Publish(ctlproto.EventMsg{Name: ctlproto.EventExited, Exit: &code})
	names := <-got
	if strings.Join(names, " ") != "status:running stopping exited" {
		t.Errorf("events = %q", names)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped != 1 || len(m.signals) != 1 || m.signals[0] != syscall.SIGUSR1 {
		t.Errorf("machine stopped %d times, signals %v; want 1, [SIGUSR1]", m.stopped, m.signals)
	}
}

// WaitReady returns at the ready event, at once when the status says ready
// already, and with an error when the workload exits first.
func TestWaitReady(t *testing.T) {
	ctx := context.Background()
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, srv := serve(t, m)
	c := connect(t, conn)
	got := make(chan error, 1)
	go func() {
		st, err := c.WaitReady(ctx)
		if err == nil && !st.Ready {
			err = errors.New("not ready")
		}
		got <- err
	}()
	// The subscription may start after the first publish: publish until
	// WaitReady returns.
	for done := false; !done; {
		srv.Publish(ctlproto.EventMsg{Name: ctlproto.EventReady})
		select {
		case err := <-got:
			if err != nil {
				t.Errorf("WaitReady: %v", err)
			}
			done = true
		case <-time.After(20 * time.Millisecond):
		}
	}
	m.mu.Lock()
	m.ready = true
	m.mu.Unlock()
	if st, err := c.WaitReady(ctx); err != nil || !st.Ready {
		t.Errorf("WaitReady when ready already: %+v, %v", st, err)
	}
	m.mu.Lock()
	m.ready, m.phase = false, ctlproto.PhaseExited
	m.mu.Unlock()
	if _, err := c.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitReady after the exit: %v; want an error", err)
	}
}

// A resize on a new session is the console's: a host terminal showing it
// was resized.
func TestResizeConsole(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, _ := serve(t, m)
	c := connect(t, conn)
	if st, err := c.ResizeConsole(context.Background(), 50, 160); err != nil || st.Phase != ctlproto.PhaseRunning {
		t.Fatalf("ResizeConsole = %+v, %v; want the status", st, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if want := []ctlproto.WinSize{{Rows: 50, Cols: 160}}; !reflect.DeepEqual(m.sizes, want) {
		t.Errorf("console sizes %v; want %v", m.sizes, want)
	}
}

// Before the root is mounted only status is answered.
func TestBootingRefusesAllButStatus(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseBooting}
	conn, _ := serve(t, m)
	c := connect(t, conn)
	ctx := context.Background()
	if st, err := c.Status(ctx); err != nil || st.Phase != ctlproto.PhaseBooting {
		t.Errorf("Status = %+v, %v", st, err)
	}
	if _, err := c.Stop(ctx); err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("Stop while booting = %v; want a refusal", err)
	}
	e, err := c.Exec(ctlproto.ExecSpec{Argv: []string{"true"}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Wait(); err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("exec while booting = %v; want a refusal", err)
	}
	if m.stopped != 0 || len(m.execs) != 0 {
		t.Errorf("the machine was asked to stop (%d) or exec (%d)", m.stopped, len(m.execs))
	}
}

// Hostile input ends at most its own session: garbage, malformed frames,
// messages for sessions that do not exist, stdin after eof. The next exec
// on the same connection works.
func TestHostileInput(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, _ := serve(t, m)
	c := connect(t, conn)
	raw := func(b []byte) {
		t.Helper()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	frame := func(m *ctlproto.Message) []byte {
		b, err := ctlproto.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	body := func(s string) []byte {
		return append(append(append([]byte{}, ctlproto.Magic[:]...), 0, 0, 0, byte(len(s))), s...)
	}
	raw([]byte("\x00\xff garbage GCTL\xff\xff\xff\xff more"))
	raw(body(`{"session":900,"type":"exec","exec":{"argv":[]}}`))
	raw(body(`{"session":901,"type":"nope"}`))
	raw(body(`not json at all`))
	raw(frame(&ctlproto.Message{Session: 902, Type: ctlproto.Stdin, Data: []byte("x")}))
	raw(frame(&ctlproto.Message{Session: 903, Type: ctlproto.Resize, Size: &ctlproto.WinSize{}}))
	raw(frame(&ctlproto.Message{Session: 0, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"true"}}}))
	raw(frame(&ctlproto.Message{Session: 904, Type: ctlproto.Exit, Exit: 3}))
	// A running exec that gets a message it cannot take ends with an
	// error; its command is hung up.
	var out syncBuffer
	e, err := c.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo up; sleep 30"}}, nil, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, &out, "up")
	// The client numbers sessions from 1: this exec is the first.
	raw(frame(&ctlproto.Message{Session: 1, Type: ctlproto.Resize, Size: &ctlproto.WinSize{Rows: 1, Cols: 1}}))
	if _, err := e.Wait(); err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Errorf("exec after a bad resize: %v; want its session ended with an error", err)
	}
	if code, out, _, err := run(t, c, ctlproto.ExecSpec{Argv: []string{"echo", "still here"}}, ""); code != 0 || out != "still here\n" || err != nil {
		t.Errorf("exec after hostile input = %d, %q, %v", code, out, err)
	}
}

// A new connection's hello hangs up the sessions of the last one: their
// commands get SIGHUP, and nothing of theirs reaches the new connection.
func TestHelloHangsUp(t *testing.T) {
	m := &fakeMachine{phase: ctlproto.PhaseRunning}
	conn, _ := serve(t, m)
	enc := ctlproto.NewEncoder(conn)
	dec := ctlproto.NewDecoder(conn)
	send := func(msg *ctlproto.Message) {
		t.Helper()
		if err := enc.Encode(msg); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() *ctlproto.Message {
		t.Helper()
		msg, err := dec.Decode()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	send(&ctlproto.Message{Type: ctlproto.Hello, Version: 1})
	if msg := recv(); msg.Type != ctlproto.Hello {
		t.Fatalf("answer to hello: %+v", msg)
	}
	send(&ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo up; exec sleep 30"}}})
	if msg := recv(); msg.Type != ctlproto.Stdout || string(msg.Data) != "up\n" {
		t.Fatalf("first output: %+v", msg)
	}
	send(&ctlproto.Message{Type: ctlproto.Hello, Version: 1})
	if msg := recv(); msg.Type != ctlproto.Hello {
		t.Fatalf("answer to the second hello: %+v", msg)
	}
	send(&ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"echo", "new"}}})
	for _, want := range []string{"stdout new\n", "exit "} {
		msg := recv()
		if got := string(msg.Type) + " " + string(msg.Data); msg.Session != 1 || got != want || msg.Exit != 0 {
			t.Fatalf("on the new connection: %+v; want %q", msg, want)
		}
	}
	m.mu.Lock()
	first := m.procs[0]
	m.mu.Unlock()
	if code := first.Wait(); code != 128+int(syscall.SIGHUP) {
		t.Errorf("the old connection's command ended with %d; want SIGHUP's %d", code, 128+int(syscall.SIGHUP))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until out holds want; the test's deadline bounds it.
func waitFor(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	for !strings.Contains(out.String(), want) {
		time.Sleep(10 * time.Millisecond)
		if dl, ok := t.Deadline(); ok && time.Until(dl) < time.Second {
			t.Fatalf("output %q never held %q", out.String(), want)
		}
	}
}
