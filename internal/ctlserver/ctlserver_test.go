package ctlserver_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/ctlserver/ctltest"
)

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
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
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
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
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
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
	c := connect(t, conn)
	var out ctltest.Buffer
	e, err := c.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done"}}, nil, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "ready\n")
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
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
	c := connect(t, conn)
	var out ctltest.Buffer
	pr, pw, _ := os.Pipe()
	defer pw.Close()
	e, err := c.Exec(ctlproto.ExecSpec{
		Argv: []string{"sh", "-c", `test -t 0 && echo tty; stty size; read line; echo "line=$line"; trap 'stty size' WINCH; until read x; do :; done`},
		TTY:  true, Stdin: true, Size: &ctlproto.WinSize{Rows: 30, Cols: 100},
	}, pr, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "30 100")
	pw.WriteString("hello\r")
	out.WaitFor(t, "line=hello")
	if err := e.Resize(40, 120); err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "40 120")
	pw.WriteString("bye\r")
	if code, err := e.Wait(); code != 0 || err != nil {
		t.Errorf("Wait = %d, %v; output %q", code, err, out.String())
	}
	if !strings.Contains(out.String(), "tty\r\n") {
		t.Errorf("output %q; want the command to see a terminal", out.String())
	}
}

func TestStatusStopSignalEvents(t *testing.T) {
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, srv := ctltest.Serve(t, m)
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
	m.Mu.Lock()
	defer m.Mu.Unlock()
	if m.Stopped != 1 || len(m.Signals) != 1 || m.Signals[0] != syscall.SIGUSR1 {
		t.Errorf("machine stopped %d times, signals %v; want 1, [SIGUSR1]", m.Stopped, m.Signals)
	}
}

// WaitReady returns at the ready event, at once when the status says ready
// already, and with an error when the workload exits first.
func TestWaitReady(t *testing.T) {
	ctx := context.Background()
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, srv := ctltest.Serve(t, m)
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
	m.Mu.Lock()
	m.Ready = true
	m.Mu.Unlock()
	if st, err := c.WaitReady(ctx); err != nil || !st.Ready {
		t.Errorf("WaitReady when ready already: %+v, %v", st, err)
	}
	m.Mu.Lock()
	m.Ready, m.Phase = false, ctlproto.PhaseExited
	m.Mu.Unlock()
	if _, err := c.WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitReady after the exit: %v; want an error", err)
	}
}

// A resize on a new session is the console's: a host terminal showing it
// was resized.
func TestResizeConsole(t *testing.T) {
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
	c := connect(t, conn)
	if st, err := c.ResizeConsole(context.Background(), 50, 160); err != nil || st.Phase != ctlproto.PhaseRunning {
		t.Fatalf("ResizeConsole = %+v, %v; want the status", st, err)
	}
	m.Mu.Lock()
	defer m.Mu.Unlock()
	if want := []ctlproto.WinSize{{Rows: 50, Cols: 160}}; !reflect.DeepEqual(m.Sizes, want) {
		t.Errorf("console sizes %v; want %v", m.Sizes, want)
	}
}

// Before the root is mounted only status is answered.
func TestBootingRefusesAllButStatus(t *testing.T) {
	m := &ctltest.Machine{Phase: ctlproto.PhaseBooting}
	conn, _ := ctltest.Serve(t, m)
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
	if m.Stopped != 0 || len(m.Execs) != 0 {
		t.Errorf("the machine was asked to stop (%d) or exec (%d)", m.Stopped, len(m.Execs))
	}
}

// Hostile input ends at most its own session: garbage, malformed frames,
// messages for sessions that do not exist, stdin after eof. The next exec
// on the same connection works.
func TestHostileInput(t *testing.T) {
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
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
	var out ctltest.Buffer
	e, err := c.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo up; sleep 30"}}, nil, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "up")
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
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
	c := rawConn{t, ctlproto.NewEncoder(conn), ctlproto.NewDecoder(conn)}
	c.send(&ctlproto.Message{Type: ctlproto.Hello, Version: 1})
	if msg := c.recv(); msg.Type != ctlproto.Hello {
		t.Fatalf("answer to hello: %+v", msg)
	}
	c.send(&ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo up; exec sleep 30"}}})
	if msg := c.recv(); msg.Type != ctlproto.Stdout || string(msg.Data) != "up\n" {
		t.Fatalf("first output: %+v", msg)
	}
	c.send(&ctlproto.Message{Type: ctlproto.Hello, Version: 1})
	if msg := c.recv(); msg.Type != ctlproto.Hello {
		t.Fatalf("answer to the second hello: %+v", msg)
	}
	c.send(&ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"echo", "new"}}})
	for _, want := range []string{"stdout new\n", "exit "} {
		msg := c.recv()
		if got := string(msg.Type) + " " + string(msg.Data); msg.Session != 1 || got != want || msg.Exit != 0 {
			t.Fatalf("on the new connection: %+v; want %q", msg, want)
		}
	}
	m.Mu.Lock()
	first := m.Procs[0]
	m.Mu.Unlock()
	if code := first.Wait(); code != 128+int(syscall.SIGHUP) {
		t.Errorf("the old connection's command ended with %d; want SIGHUP's %d", code, 128+int(syscall.SIGHUP))
	}
}

// hangup ends one session as the end of its connection would, and leaves
// the others running; it is not answered, nor is it or a grant for a
// session that has ended.
func TestHangup(t *testing.T) {
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
	c := rawConn{t, ctlproto.NewEncoder(conn), ctlproto.NewDecoder(conn)}
	for id := uint32(1); id <= 2; id++ {
		c.send(&ctlproto.Message{Session: id, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo up; read line; echo $line"}, Stdin: true}})
		if msg := c.recv(); msg.Session != id || msg.Type != ctlproto.Stdout || string(msg.Data) != "up\n" {
			t.Fatalf("session %d: first output %+v", id, msg)
		}
	}
	c.send(&ctlproto.Message{Session: 3, Type: ctlproto.Events})
	if msg := c.recv(); msg.Session != 3 || msg.Type != ctlproto.StatusReq {
		t.Fatalf("events: first message %+v; want the status", msg)
	}
	c.send(&ctlproto.Message{Session: 1, Type: ctlproto.Hangup})
	c.send(&ctlproto.Message{Session: 3, Type: ctlproto.Hangup})
	c.send(&ctlproto.Message{Session: 9, Type: ctlproto.Hangup})
	c.send(&ctlproto.Message{Session: 9, Type: ctlproto.Window, Window: 8})
	c.send(&ctlproto.Message{Session: 2, Type: ctlproto.Stdin, Data: []byte("still\n")})
	for _, want := range []string{"stdout still\n", "exit "} {
		msg := c.recv()
		if got := string(msg.Type) + " " + string(msg.Data); msg.Session != 2 || got != want || msg.Exit != 0 {
			t.Fatalf("after the hangups: %+v; want session 2's %q", msg, want)
		}
	}
	m.Mu.Lock()
	first := m.Procs[0]
	m.Mu.Unlock()
	if code := first.Wait(); code != 128+int(syscall.SIGHUP) {
		t.Errorf("the hung up command ended with %d; want SIGHUP's %d", code, 128+int(syscall.SIGHUP))
	}
	// Nothing answered the hangups: the next message is this status.
	c.send(&ctlproto.Message{Session: 4, Type: ctlproto.StatusReq})
	if msg := c.recv(); msg.Session != 4 || msg.Type != ctlproto.StatusReq {
		t.Errorf("after the hangups: %+v; want the answer to session 4's status", msg)
	}
}

// rawConn speaks frames on a connection without a client's bookkeeping.
type rawConn struct {
	t   *testing.T
	enc *ctlproto.Encoder
	dec *ctlproto.Decoder
}

func (c rawConn) send(msg *ctlproto.Message) {
	c.t.Helper()
	if err := c.enc.Encode(msg); err != nil {
		c.t.Fatal(err)
	}
}

func (c rawConn) recv() *ctlproto.Message {
	c.t.Helper()
	msg, err := c.dec.Decode()
	if err != nil {
		c.t.Fatal(err)
	}
	return msg
}

// An exec with a window sends that many output messages and waits for the
// host to grant more; its command waits meanwhile, and nothing is lost.
func TestWindow(t *testing.T) {
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
	enc := ctlproto.NewEncoder(conn)
	msgs := make(chan *ctlproto.Message, 1024)
	go func() {
		dec := ctlproto.NewDecoder(conn)
		for {
			msg, err := dec.Decode()
			if err != nil {
				close(msgs)
				return
			}
			msgs <- msg
		}
	}()
	const size = 1 << 20 // beyond the window and the pipe
	const argv = "head -c 1048576 /dev/zero"
	if err := enc.Encode(&ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"sh", "-c", argv}, Window: 4}}); err != nil {
		t.Fatal(err)
	}
	got := 0
	for range 4 {
		msg := <-msgs
		if msg == nil || msg.Type != ctlproto.Stdout {
			t.Fatalf("within the window: %+v", msg)
		}
		got += len(msg.Data)
	}
	select {
	case msg := <-msgs:
		t.Fatalf("past the window of 4: %+v", msg)
	case <-time.After(300 * time.Millisecond):
	}
	if p := m.Proc(argv); p == nil {
		t.Fatal("the command did not start")
	} else {
		select {
		case <-p.Done():
			t.Error("the command ended while the host granted nothing")
		default:
		}
	}
	if err := enc.Encode(&ctlproto.Message{Session: 1, Type: ctlproto.Window, Window: 1000}); err != nil {
		t.Fatal(err)
	}
	for msg := range msgs {
		if msg.Type == ctlproto.Exit {
			if msg.Exit != 0 || got != size {
				t.Errorf("exit %d after %d bytes; want 0 after %d", msg.Exit, got, size)
			}
			return
		}
		got += len(msg.Data)
	}
	t.Fatal("the channel ended before the exit")
}

// A command that leaves a writer behind (its stdout kept open) ends its
// exec about a second (the server's drainTime) after it ended, with or
// without a window; after a hang-up the writer's pipe is closed too, so it
// dies of SIGPIPE rather than holding ginit's files.
func TestDrain(t *testing.T) {
	const argv = "(while echo tick; do sleep 0.2; done) & echo started"
	for _, window := range []int{0, 16} {
		m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
		conn, _ := ctltest.Serve(t, m)
		c := rawConn{t, ctlproto.NewEncoder(conn), ctlproto.NewDecoder(conn)}
		c.send(&ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"sh", "-c", argv}, Window: window}})
		start := time.Now()
		for n := 1; ; n++ {
			msg := c.recv()
			if msg.Type == ctlproto.Exit {
				break
			}
			if window > 0 && n%8 == 0 {
				c.send(&ctlproto.Message{Session: 1, Type: ctlproto.Window, Window: 8})
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("window %d: no exit %v after the start: the writer left behind holds the exec", window, time.Since(start))
			}
		}
	}

	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	conn, _ := ctltest.Serve(t, m)
	c := rawConn{t, ctlproto.NewEncoder(conn), ctlproto.NewDecoder(conn)}
	c.send(&ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"sh", "-c", "(trap '' HUP; while echo tick; do sleep 0.2; done) & echo pid=$!"}}})
	pid := 0
	for pid == 0 {
		msg := c.recv()
		if line, ok := strings.CutPrefix(string(msg.Data), "pid="); ok {
			pid, _ = strconv.Atoi(strings.TrimSpace(strings.SplitN(line, "\n", 2)[0]))
		}
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	go func() {
		for {
			if _, err := c.dec.Decode(); err != nil {
				return
			}
		}
	}()
	c.send(&ctlproto.Message{Session: 1, Type: ctlproto.Hangup})
	for start := time.Now(); syscall.Kill(pid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the writer left behind still writes %v after the hang-up", time.Since(start))
		}
	}

}
