// Package ctlclient is the host's end of the control channel: it dials the
// socket behind a VM's org.ginit.control port, says hello, and runs
// sessions (exec, status, events, stop) over the one connection.
package ctlclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/ctlproto"
)

// ErrNoAnswer is a channel on which no ginit answered hello: an image
// without the server, a VM without the port, or one still booting.
var ErrNoAnswer = errors.New("no answer on the control channel")

// Client is one connection.
type Client struct {
	conn io.ReadWriteCloser

	wmu sync.Mutex // one frame at a time
	enc *ctlproto.Encoder

	mu       sync.Mutex
	next     uint32
	sessions map[uint32]chan *ctlproto.Message
	err      error         // why reading ended
	done     chan struct{} // closed when reading ended
	hello    chan int      // the guest's version
	version  int           // the guest's version, once it said hello
	lock     *os.File      // DialFree's lock on the socket, held until Close
}

// Dial connects to the unix socket path (QEMU's chardev) and says hello,
// waiting until ctx ends for the answer.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("dial control channel %s: %w", path, err)
	}
	c, err := New(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("control channel %s: %w", path, err)
	}
	return c, nil
}

// DialFree connects to the first of a VM's control sockets that no other
// ginitctl holds, waiting for the first one when all are taken: QEMU serves
// each socket to one client at a time. A lock file beside each socket
// (PATH.lock), held until Close, says it is taken. Sockets that do not
// exist (a VM with fewer ports) are skipped.
func DialFree(ctx context.Context, paths []string) (*Client, error) {
	return dialFree(ctx, paths, true)
}

// ErrNoSocket is a VM without control sockets: QEMU has not made them
// yet, or was not given the ports.
var ErrNoSocket = errors.New("no control socket")

// ErrBusy is a VM whose control sockets are all held by other clients.
var ErrBusy = errors.New("every control socket is in use")

// DialIdle is DialFree that does not wait: with every socket taken it
// returns ErrBusy at once, for a quick look (ps) that must not queue
// behind long execs.
func DialIdle(ctx context.Context, paths []string) (*Client, error) {
	return dialFree(ctx, paths, false)
}

func dialFree(ctx context.Context, paths []string, wait bool) (*Client, error) {
	var lock *os.File
	var path string
	found := 0
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		found++
		f, err := os.OpenFile(p+".lock", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("control channel lock: %w", err)
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			lock, path = f, p
			break
		}
		f.Close()
	}
	if lock == nil {
		if found == 0 {
			return nil, fmt.Errorf("%w (%v)", ErrNoSocket, paths)
		}
		if !wait {
			return nil, ErrBusy
		}
		// All taken: wait for the first, as its own client would.
		path = paths[0]
		f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("control channel lock: %w", err)
		}
		done := make(chan error, 1)
		go func() { done <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
		select {
		case err := <-done:
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("control channel lock %s: %w", f.Name(), err)
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ctx.Err(), ErrBusy)
		}
		lock = f
	}
	c, err := Dial(ctx, path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	c.lock = lock
	return c, nil
}

// DialVsock connects to ginit's AF_VSOCK port on the machine with guest
// CID cid and says hello, waiting until ctx ends for the answer.
func DialVsock(ctx context.Context, cid, port uint32) (*Client, error) {
	conn, err := connectVsock(ctx, cid, port)
	if err != nil {
		return nil, fmt.Errorf("dial control channel vsock %d:%d: %w", cid, port, err)
	}
	c, err := New(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("control channel vsock %d:%d: %w", cid, port, err)
	}
	return c, nil
}

// connectVsock connects a non-blocking vsock socket through Go's poller,
// so that ctx bounds the connect and Close ends a read.
func connectVsock(ctx context.Context, cid, port uint32) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	err = unix.Connect(fd, &unix.SockaddrVM{CID: cid, Port: port})
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("vsock:%d:%d", cid, port))
	if err == nil {
		return f, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(dl)
	}
	rc, err := f.SyscallConn()
	if err == nil {
		var soErr int
		var gerr error
		waited := false
		err = rc.Write(func(fd uintptr) bool {
			if !waited {
				waited = true
				return false // first wait until the socket is writable
			}
			soErr, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
			if gerr != nil {
				return true
			}
			switch unix.Errno(soErr) {
			case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
				return false
			}
			return true
		})
		switch {
		case err != nil:
		case gerr != nil:
			err = gerr
		case soErr != 0:
			err = unix.Errno(soErr)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	_ = f.SetWriteDeadline(time.Time{})
	return f, nil
}

// New says hello on conn and waits until ctx ends for the answer. What the
// guest wrote before its answer (a frame an earlier connection left behind)
// is dropped.
func New(ctx context.Context, conn io.ReadWriteCloser) (*Client, error) {
	c := &Client{
		conn:     conn,
		enc:      ctlproto.NewEncoder(conn),
		sessions: map[uint32]chan *ctlproto.Message{},
		done:     make(chan struct{}),
		hello:    make(chan int, 1),
	}
	go c.read()
	if err := c.send(&ctlproto.Message{Type: ctlproto.Hello, Version: ctlproto.Version}); err != nil {
		return nil, err
	}
	select {
	case v := <-c.hello:
		if v < 1 {
			return nil, fmt.Errorf("the guest speaks protocol version %d", v)
		}
		c.version = v
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%w: %v", ErrNoAnswer, c.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrNoAnswer, ctx.Err())
	}
}

// Close ends the connection; the guest hangs up its sessions.
func (c *Client) Close() error {
	err := c.conn.Close()
	if c.lock != nil {
		c.lock.Close()
	}
	return err
}

func (c *Client) read() {
	err := ctlproto.Receive(c.conn, func(v int) { c.hello <- v }, func(m *ctlproto.Message) {
		c.mu.Lock()
		ch := c.sessions[m.Session]
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	})
	c.mu.Lock()
	c.err = err
	close(c.done)
	c.mu.Unlock()
}

func (c *Client) send(m *ctlproto.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.enc.Encode(m)
}

// open starts a session with request m and returns its messages.
func (c *Client) open(m *ctlproto.Message) (uint32, chan *ctlproto.Message, error) {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan *ctlproto.Message, 64)
	c.sessions[id] = ch
	c.mu.Unlock()
	m.Session = id
	if err := c.send(m); err != nil {
		c.forget(id)
		return 0, nil, err
	}
	return id, ch, nil
}

func (c *Client) forget(id uint32) {
	c.mu.Lock()
	delete(c.sessions, id)
	c.mu.Unlock()
}

// next returns the session's next message.
func (c *Client) recv(ctx context.Context, ch chan *ctlproto.Message) (*ctlproto.Message, error) {
	select {
	case m := <-ch:
		if m.Type == ctlproto.Error {
			return m, fmt.Errorf("ginit: %s", m.Error)
		}
		return m, nil
	case <-c.done:
		// Messages read before the end are still delivered.
		select {
		case m := <-ch:
			return m, nil
		default:
		}
		return nil, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// request sends a one-answer request and returns the status it gets.
func (c *Client) request(ctx context.Context, m *ctlproto.Message) (ctlproto.Status, error) {
	id, ch, err := c.open(m)
	if err != nil {
		return ctlproto.Status{}, err
	}
	defer c.forget(id)
	ans, err := c.recv(ctx, ch)
	if err != nil {
		return ctlproto.Status{}, fmt.Errorf("%s: %w", m.Type, err)
	}
	if ans.Status == nil {
		return ctlproto.Status{}, fmt.Errorf("%s: answered with %s", m.Type, ans.Type)
	}
	return *ans.Status, nil
}

// Status asks for the machine's status.
func (c *Client) Status(ctx context.Context) (ctlproto.Status, error) {
	return c.request(ctx, &ctlproto.Message{Type: ctlproto.StatusReq})
}

// Stop stops the machine as its power button does, and returns the status
// at the time.
func (c *Client) Stop(ctx context.Context) (ctlproto.Status, error) {
	return c.request(ctx, &ctlproto.Message{Type: ctlproto.Stop})
}

// StopWait stops the machine as its power button does and waits for the
// workload's exited event; it returns the status then, with Exit set. A
// workload that has ended already gives its status at once. A machine
// still booting refuses the stop (an error).
func (c *Client) StopWait(ctx context.Context) (ctlproto.Status, error) {
	var last ctlproto.Status
	err := c.events(ctx, func(st *ctlproto.Status, ev *ctlproto.EventMsg) error {
		switch {
		case st != nil:
			last = *st
			if st.Phase != ctlproto.PhaseExited {
				if _, err := c.Stop(ctx); err != nil {
					return err
				}
			}
		case ev.Name == ctlproto.EventExited:
			last.Phase, last.Exit = ctlproto.PhaseExited, ev.Exit
		case ev.Name == ctlproto.EventStopping:
			last.Phase = ctlproto.PhaseStopping
		}
		return nil
	})
	if err == nil && last.Exit == nil {
		err = errors.New("stop: the workload's status did not come")
	}
	return last, err
}

// Signal sends sig to the workload.
func (c *Client) Signal(ctx context.Context, sig syscall.Signal) (ctlproto.Status, error) {
	return c.request(ctx, &ctlproto.Message{Type: ctlproto.Signal, Signal: int(sig)})
}

// ResizeConsole sets the console's window size, as a host terminal that
// shows it was resized.
func (c *Client) ResizeConsole(ctx context.Context, rows, cols uint16) (ctlproto.Status, error) {
	return c.request(ctx, &ctlproto.Message{Type: ctlproto.Resize, Size: &ctlproto.WinSize{Rows: rows, Cols: cols}})
}

// WaitRunning waits until the workload has started, polling the status:
// a machine still booting takes no exec. A workload that has ended is an
// error.
func (c *Client) WaitRunning(ctx context.Context) error {
	st, err := c.WaitStarted(ctx)
	if err == nil && st.Phase == ctlproto.PhaseExited {
		err = errors.New("the workload has exited")
	}
	return err
}

// WaitStarted waits until the workload has started, polling the status,
// and returns the status then: running, stopping, or exited already.
func (c *Client) WaitStarted(ctx context.Context) (ctlproto.Status, error) {
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return st, err
		}
		switch st.Phase {
		case ctlproto.PhaseRunning, ctlproto.PhaseStopping, ctlproto.PhaseExited:
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("the workload has not started (%s): %w", st.Phase, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitReady waits until the workload is ready (the image's ExposedPorts
// accept connections inside the machine) and returns the status then. A
// workload that exits first is an error.
func (c *Client) WaitReady(ctx context.Context) (ctlproto.Status, error) {
	if st, err := c.waitBooted(ctx); err != nil {
		return st, err
	}
	var last ctlproto.Status
	errReady := errors.New("ready")
	err := c.events(ctx, func(st *ctlproto.Status, ev *ctlproto.EventMsg) error {
		if st != nil {
			last = *st
		}
		if last.Ready || ev != nil && ev.Name == ctlproto.EventReady {
			last.Ready = true
			return errReady
		}
		if ev != nil && ev.Exit != nil {
			last.Phase, last.Exit = ctlproto.PhaseExited, ev.Exit
		}
		if last.Phase == ctlproto.PhaseExited {
			code := -1
			if last.Exit != nil {
				code = *last.Exit
			}
			return fmt.Errorf("the workload exited (%d) before it was ready", code)
		}
		return nil
	})
	if err == errReady {
		return last, nil
	}
	return last, err
}

// waitBooted polls the status until the root is mounted: events are
// answered only then.
func (c *Client) waitBooted(ctx context.Context) (ctlproto.Status, error) {
	for {
		st, err := c.Status(ctx)
		if err != nil || st.Phase != ctlproto.PhaseBooting {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitExit waits for the workload's exited event and returns its status,
// the full value: at once when the workload has ended already. It ends
// with an error when the connection or ctx does first.
func (c *Client) WaitExit(ctx context.Context) (int, error) {
	if _, err := c.waitBooted(ctx); err != nil {
		return 0, err
	}
	var exit *int
	err := c.Events(ctx, func(st *ctlproto.Status, ev *ctlproto.EventMsg) {
		switch {
		case st != nil && st.Exit != nil:
			exit = st.Exit
		case ev != nil && ev.Exit != nil:
			exit = ev.Exit
		}
	})
	if err == nil && exit == nil {
		err = errors.New("events ended without the workload's status")
	}
	if err != nil {
		return 0, err
	}
	return *exit, nil
}

// Events subscribes to the workload's events: fn gets the status first,
// then each event, until the exited event (nil error), the connection's
// end or ctx's.
func (c *Client) Events(ctx context.Context, fn func(*ctlproto.Status, *ctlproto.EventMsg)) error {
	return c.events(ctx, func(st *ctlproto.Status, ev *ctlproto.EventMsg) error {
		fn(st, ev)
		return nil
	})
}

// events is Events whose fn may end the subscription with an error.
func (c *Client) events(ctx context.Context, fn func(*ctlproto.Status, *ctlproto.EventMsg) error) error {
	id, ch, err := c.open(&ctlproto.Message{Type: ctlproto.Events})
	if err != nil {
		return err
	}
	defer c.forget(id)
	for {
		m, err := c.recv(ctx, ch)
		if err != nil {
			return fmt.Errorf("events: %w", err)
		}
		if err := fn(m.Status, m.Event); err != nil {
			return err
		}
		if m.Status != nil && m.Status.Phase == ctlproto.PhaseExited || m.Event != nil && m.Event.Name == ctlproto.EventExited {
			return nil
		}
	}
}

// Exec is a command running in the guest.
type Exec struct {
	c        *Client
	id       uint32
	windowed bool // the guest waits for window messages
	done     chan struct{}
	code     int
	err      error
}

// execWindow is how many output messages (32 KiB at most each) an exec's
// guest sends ahead of what the host has written: a host that writes
// slowly (a pager) holds up its own command, and never fills the session's
// queue or a mux's queue for its connection. Half of it is granted back at
// a time.
const execWindow = 16

// Exec starts spec. With stdin (and spec.Stdin) its input is sent until
// stdin's end; its output goes to stdout and stderr.
func (c *Client) Exec(spec ctlproto.ExecSpec, stdin io.Reader, stdout, stderr io.Writer) (*Exec, error) {
	spec.Stdin = spec.Stdin && stdin != nil
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if c.version >= 2 {
		spec.Window = execWindow
	}
	id, ch, err := c.open(&ctlproto.Message{Type: ctlproto.Exec, Exec: &spec})
	if err != nil {
		return nil, err
	}
	e := &Exec{c: c, id: id, done: make(chan struct{}), windowed: spec.Window > 0}
	if spec.Stdin {
		go e.feed(stdin)
	}
	go e.pump(ch, stdout, stderr)
	return e, nil
}

// feed sends stdin until its end, then eof.
func (e *Exec) feed(stdin io.Reader) {
	buf := make([]byte, ctlproto.MaxData)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			if e.send(&ctlproto.Message{Type: ctlproto.Stdin, Data: buf[:n]}) != nil {
				return
			}
		}
		if err != nil {
			_ = e.send(&ctlproto.Message{Type: ctlproto.EOF})
			return
		}
	}
}

func (e *Exec) send(m *ctlproto.Message) error {
	select {
	case <-e.done:
		return errors.New("the exec has ended")
	default:
	}
	m.Session = e.id
	return e.c.send(m)
}

// pump writes the output until the exit.
func (e *Exec) pump(ch chan *ctlproto.Message, stdout, stderr io.Writer) {
	defer close(e.done)
	defer e.c.forget(e.id)
	written := 0 // output messages written since the last window
	for {
		m, err := e.c.recv(context.Background(), ch)
		if err != nil {
			e.code, e.err = -1, err
			return
		}
		switch m.Type {
		case ctlproto.Stdout, ctlproto.Stderr:
			w := stdout
			if m.Type == ctlproto.Stderr {
				w = stderr
			}
			_, _ = w.Write(m.Data)
			// Written: the guest may send as many more.
			if written++; e.windowed && written == execWindow/2 {
				_ = e.send(&ctlproto.Message{Type: ctlproto.Window, Window: written})
				written = 0
			}
		case ctlproto.Exit:
			e.code = m.Exit
			if m.Error != "" {
				e.err = &StartError{Code: m.Exit, Msg: m.Error}
			}
			return
		}
	}
}

// StartError is a command that did not start in the guest.
type StartError struct {
	Code int // 126, 127, or 125 for ginit's own failure
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

// Signal sends sig to the command.
func (e *Exec) Signal(sig syscall.Signal) error {
	return e.send(&ctlproto.Message{Type: ctlproto.Signal, Signal: int(sig)})
}

// Resize sets the command's terminal size.
func (e *Exec) Resize(rows, cols uint16) error {
	return e.send(&ctlproto.Message{Type: ctlproto.Resize, Size: &ctlproto.WinSize{Rows: rows, Cols: cols}})
}

// Wait returns the command's status once it has ended, and its output has
// been written. A *StartError says it did not start (with its status); any
// other error that the channel failed first (status -1).
func (e *Exec) Wait() (int, error) {
	<-e.done
	return e.code, e.err
}

// Done is closed when the command has ended.
func (e *Exec) Done() <-chan struct{} { return e.done }

// DialTimeout is Dial with a timeout.
func DialTimeout(path string, d time.Duration) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return Dial(ctx, path)
}
