package ctlmux

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/ctlserver"
	"github.com/ginit-dev/ginit/internal/ctlserver/ctltest"
)

// muxOver starts a real server for m and a mux over its connection.
func muxOver(t *testing.T, m *ctltest.Machine) (*Mux, *ctlserver.Server) {
	t.Helper()
	conn, srv := ctltest.Serve(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mux, err := New(ctx, conn, t.Logf)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { mux.Close() })
	return mux, srv
}

func dial(t *testing.T, mux *Mux) *ctlclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mux.Client(ctx)
	if err != nil {
		t.Fatalf("hello through the mux: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(c *ctlclient.Client, spec ctlproto.ExecSpec, stdin string) (int, string, error) {
	var out bytes.Buffer
	var e *ctlclient.Exec
	var err error
	if spec.Stdin {
		e, err = c.Exec(spec, strings.NewReader(stdin), &out, &out)
	} else {
		e, err = c.Exec(spec, nil, &out, &out)
	}
	if err != nil {
		return 0, "", err
	}
	code, err := e.Wait()
	return code, out.String(), err
}

// Many clients, each numbering its sessions from 1, run execs at once over
// the one connection, and each gets its own answers.
func TestManyClients(t *testing.T) {
	mux, _ := muxOver(t, &ctltest.Machine{Phase: ctlproto.PhaseRunning})
	if mux.Version() != ctlproto.Version {
		t.Errorf("Version() = %d; want %d", mux.Version(), ctlproto.Version)
	}
	const clients, perClient = 12, 3
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for i := range clients {
		c := dial(t, mux)
		for j := range perClient {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := fmt.Sprintf("client %d exec %d", i, j)
				code, out, err := run(c, ctlproto.ExecSpec{Argv: []string{"sh", "-c", `read line; echo "$line"`}, Stdin: true}, want+"\n")
				if err != nil || code != 0 || out != want+"\n" {
					errs <- fmt.Errorf("%s: %d, %q, %v", want, code, out, err)
				}
				if st, err := c.Status(context.Background()); err != nil || st.Pid != 42 {
					errs <- fmt.Errorf("client %d status: %+v, %v", i, st, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A client that goes hangs up its commands (SIGHUP) and its subscriptions,
// and no other client's: more clients than the guest holds sessions for
// one connection come and go, and a command still runs after them.
func TestLeavingHangsUp(t *testing.T) {
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	mux, _ := muxOver(t, m)
	stays := dial(t, mux)
	never, _ := io.Pipe()
	staying, err := stays.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", `read line; echo "$line"`}, Stdin: true}, never, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}

	goes := dial(t, mux)
	var out ctltest.Buffer
	if _, err := goes.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo up; exec sleep 30"}}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	out.WaitFor(t, "up")
	goes.Close()
	if !hungUp(m.Proc("echo up; exec sleep 30")) {
		t.Error("the command of the client that went was not hung up")
	}

	for i := range 80 {
		c := dial(t, mux)
		ctx, cancel := context.WithCancel(context.Background())
		subscribed := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- c.Events(ctx, func(st *ctlproto.Status, _ *ctlproto.EventMsg) {
				if st != nil {
					close(subscribed)
				}
			})
		}()
		select {
		case <-subscribed:
		case err := <-done:
			t.Fatalf("subscription %d: %v", i, err)
		}
		c.Close()
		cancel()
	}
	if code, out, err := run(stays, ctlproto.ExecSpec{Argv: []string{"echo", "after"}}, ""); err != nil || code != 0 || out != "after\n" {
		t.Errorf("after 80 clients came and went: %d, %q, %v", code, out, err)
	}
	select {
	case <-staying.Done():
		t.Error("the staying client's command ended with the others")
	default:
	}
}

// hungUp says whether p ended of SIGHUP (or of SIGPIPE, writing to the
// pipe the hang-up closed) within 10 seconds.
func hungUp(p *ctltest.HostProcess) bool {
	select {
	case <-p.Done():
		return p.Code == 128+int(syscall.SIGHUP) || p.Code == 128+int(syscall.SIGPIPE)
	case <-time.After(10 * time.Second):
		p.Cmd.Process.Kill()
		return false
	}
}

// hello is answered by the mux: it hangs up the sessions of the client that
// says it, and not those of another.
func TestHello(t *testing.T) {
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	mux, _ := muxOver(t, m)
	other := dial(t, mux)
	var otherOut ctltest.Buffer
	e, err := other.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", `echo up; read line; echo "$line"`}, Stdin: true}, strings.NewReader("still\n"), &otherOut, &otherOut)
	if err != nil {
		t.Fatal(err)
	}

	mine, theirs := net.Pipe()
	go mux.ServeConn(mine)
	defer theirs.Close()
	enc, dec := ctlproto.NewEncoder(theirs), ctlproto.NewDecoder(theirs)
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
	if msg := recv(); msg.Type != ctlproto.Hello || msg.Version != ctlproto.Version {
		t.Fatalf("hello answered %+v; want hello with version %d", msg, ctlproto.Version)
	}
	send(&ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo up; exec sleep 30"}}})
	if msg := recv(); msg.Session != 1 || msg.Type != ctlproto.Stdout || string(msg.Data) != "up\n" {
		t.Fatalf("first output: %+v", msg)
	}
	send(&ctlproto.Message{Type: ctlproto.Hello, Version: 2})
	if msg := recv(); msg.Type != ctlproto.Hello {
		t.Fatalf("second hello answered %+v", msg)
	}
	send(&ctlproto.Message{Type: ctlproto.StatusReq})
	if msg := recv(); msg.Type != ctlproto.Error || msg.Session != 0 {
		t.Errorf("status on session 0 answered %+v; want an error", msg)
	}
	if !hungUp(m.Proc("echo up; exec sleep 30")) {
		t.Error("after a second hello the first one's command was not hung up")
	}
	if code, err := e.Wait(); err != nil || code != 0 || otherOut.String() != "up\nstill\n" {
		t.Errorf("the other client's exec: %d, %q, %v; want 0 and its output", code, otherOut.String(), err)
	}
}

// A client that reads nothing is dropped after stallLimit; the others go
// on.
func TestStalledClient(t *testing.T) {
	defer func(d time.Duration) { stallLimit = d }(stallLimit)
	stallLimit = 200 * time.Millisecond
	m := &ctltest.Machine{Phase: ctlproto.PhaseRunning}
	mux, _ := muxOver(t, m)
	mine, theirs := net.Pipe()
	served := make(chan struct{})
	go func() { mux.ServeConn(mine); close(served) }()
	// Output far beyond the queue, never read.
	exec := &ctlproto.Message{Session: 1, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"sh", "-c", "while echo more; do :; done"}}}
	if err := ctlproto.NewEncoder(theirs).Encode(exec); err != nil {
		t.Fatal(err)
	}
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatal("a client that reads nothing was not dropped")
	}
	c := dial(t, mux)
	if code, out, err := run(c, ctlproto.ExecSpec{Argv: []string{"echo", "fine"}}, ""); err != nil || code != 0 || out != "fine\n" {
		t.Errorf("another client after the drop: %d, %q, %v", code, out, err)
	}
	if !hungUp(m.Proc("while echo more; do :; done")) {
		t.Error("the dropped client's command was not hung up")
	}
}

// A client whose exec has a window (as ctlclient asks) and that writes its
// output slowly holds up that command only: it is not dropped, others go
// on meanwhile, and it gets every byte.
func TestSlowReader(t *testing.T) {
	defer func(d time.Duration) { stallLimit = d }(stallLimit)
	stallLimit = 200 * time.Millisecond
	mux, _ := muxOver(t, &ctltest.Machine{Phase: ctlproto.PhaseRunning})
	slow := &heldWriter{release: make(chan struct{})}
	e, err := dial(t, mux).Exec(ctlproto.ExecSpec{Argv: []string{"head", "-c", "67108864", "/dev/zero"}}, nil, slow, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * stallLimit)
	if code, out, err := run(dial(t, mux), ctlproto.ExecSpec{Argv: []string{"echo", "fine"}}, ""); err != nil || code != 0 || out != "fine\n" {
		t.Errorf("another client while one reads nothing: %d, %q, %v", code, out, err)
	}
	close(slow.release)
	if code, err := e.Wait(); err != nil || code != 0 || slow.n != 64<<20 {
		t.Errorf("the slow reader's exec: %d, %v, %d bytes; want 0 and 64 MiB, beyond the mux's queue", code, err, slow.n)
	}
}

// heldWriter takes nothing until release is closed, then counts.
type heldWriter struct {
	release chan struct{}
	n       int
}

func (w *heldWriter) Write(p []byte) (int, error) {
	<-w.release
	w.n += len(p)
	return len(p), nil
}

// When the guest's connection ends, what it said before reaches the
// clients, and then their connections end.
func TestGuestEnds(t *testing.T) {
	guest, host := net.Pipe()
	defer guest.Close()
	enc, dec := ctlproto.NewEncoder(guest), ctlproto.NewDecoder(guest)
	// The guest: it answers hello, status and one subscription, says the workload
	// exited, and its connection ends.
	go func() {
		for {
			msg, err := dec.Decode()
			if err != nil {
				return
			}
			switch msg.Type {
			case ctlproto.Hello:
				_ = enc.Encode(&ctlproto.Message{Type: ctlproto.Hello, Version: ctlproto.Version})
			case ctlproto.StatusReq:
				_ = enc.Encode(&ctlproto.Message{Session: msg.Session, Type: ctlproto.StatusReq, Status: &ctlproto.Status{Phase: ctlproto.PhaseRunning}})
			case ctlproto.Events:
				code := 3
				_ = enc.Encode(&ctlproto.Message{Session: msg.Session, Type: ctlproto.StatusReq, Status: &ctlproto.Status{Phase: ctlproto.PhaseRunning}})
				_ = enc.Encode(&ctlproto.Message{Session: msg.Session, Type: ctlproto.Event, Event: &ctlproto.EventMsg{Name: ctlproto.EventExited, Exit: &code}})
				guest.Close()
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mux, err := New(ctx, host, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, mux)
	if exit, err := c.WaitExit(ctx); err != nil || exit != 3 {
		t.Errorf("WaitExit: %d, %v; want the exited event's 3", exit, err)
	}
	<-mux.Done()
	if _, err := c.Status(ctx); err == nil {
		t.Error("a status after the guest's connection ended was answered")
	}
	if _, err := mux.Client(ctx); err == nil {
		t.Error("a new client after the end said hello")
	}
}

// FuzzClient: no client input makes the mux panic or stop serving the
// others. The guest is still booting, so it runs nothing the input asks.
func FuzzClient(f *testing.F) {
	for _, m := range []*ctlproto.Message{
		{Type: ctlproto.Hello, Version: 2},
		{Session: 1, Type: ctlproto.StatusReq},
		{Session: 1, Type: ctlproto.Hangup},
		{Session: 2, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"true"}}},
		{Session: 2, Type: ctlproto.Stdin, Data: []byte("data")},
		{Type: ctlproto.Stop},
	} {
		frame, err := ctlproto.Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Add([]byte("GCTL\x00\x00\x00\x02{}GCTL\x00\x00\x00\x30{\"session\":4294967295,\"type\":\"events\"}"))
	f.Add([]byte("\xff\xfe garbage"))
	f.Fuzz(func(t *testing.T, in []byte) {
		mux, _ := muxOver(t, &ctltest.Machine{Phase: ctlproto.PhaseBooting})
		mine, theirs := net.Pipe()
		served := make(chan struct{})
		go func() { mux.ServeConn(mine); close(served) }()
		go func() { _, _ = io.Copy(io.Discard, theirs) }()
		_, _ = theirs.Write(in)
		theirs.Close()
		<-served
		st, err := dial(t, mux).Status(context.Background())
		if err != nil || st.Phase != ctlproto.PhaseBooting {
			t.Fatalf("another client's status after the input: %+v, %v", st, err)
		}
	})
}

// Listen serves a version 2 guest on a socket only this user may use, and
// refuses to share a version 1 guest, which knows no hangup.
func TestListen(t *testing.T) {
	mux, _ := muxOver(t, &ctltest.Machine{Phase: ctlproto.PhaseRunning})
	path := filepath.Join(t.TempDir(), "channel.sock")
	l, err := mux.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600", path, fi.Mode(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ctlclient.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx); err != nil || st.Pid != 42 {
		t.Errorf("status through %s: %+v, %v", path, st, err)
	}
	c.Close()
	l.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after the listener closed, %s: %v; want it gone", path, err)
	}

	guest, host := net.Pipe()
	defer guest.Close()
	go func() {
		dec, enc := ctlproto.NewDecoder(guest), ctlproto.NewEncoder(guest)
		for {
			if _, err := dec.Decode(); err != nil {
				return
			}
			_ = enc.Encode(&ctlproto.Message{Type: ctlproto.Hello, Version: 1})
		}
	}()
	old, err := New(ctx, host, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if l, err := old.Listen(path); err == nil {
		l.Close()
		t.Error("a version 1 guest was shared")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after refusing a version 1 guest, %s: %v; want no socket", path, err)
	}
}
