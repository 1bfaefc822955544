// Package ctlmux shares one control channel connection among any number of
// host clients. QEMU's socket chardev serves one client at a time, so a
// VM's serial ports alone would bound how many execs run at once; its
// supervisor instead holds one port for the VM's life and serves the
// channel to every comer on a unix socket through a Mux.
//
// A client speaks the protocol as it would to ginit. The Mux answers hello
// itself, with the guest's version; gives each client session a guest
// session of its own and routes the guest's messages back under the
// client's id; and hangs up (ctlproto.Hangup) the sessions a client leaves
// open when it goes or says hello again, as the guest does for a
// connection.
package ctlmux

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlproto"
)

// A client's messages wait in a queue of queueLen while it reads slowly.
// A client's execs with a window (ctlclient's, 16 messages) never fill it:
// the guest holds at most 64 sessions a connection, each with its window
// and its exit. One whose queue stays full for stallLimit (a client that
// asks for no window) is dropped: the one stream from the guest cannot
// pass a frame by, so meanwhile every client waits.
const queueLen = 64 * (16 + 1)

var stallLimit = 5 * time.Second

// Mux is one connection to the guest, shared.
type Mux struct {
	up      io.ReadWriteCloser
	version int // the guest's
	logf    func(format string, args ...any)

	wmu sync.Mutex // one frame at a time to the guest
	enc *ctlproto.Encoder

	mu     sync.Mutex
	next   uint32           // the last guest session id given
	routes map[uint32]route // by guest session id
	ended  bool             // reading the guest ended: no new client

	done chan struct{} // closed when reading the guest ended
	err  error         // why, once done is closed
}

// route is where a guest session's messages go.
type route struct {
	c    *client
	gen  uint64        // the client's hello it was opened under
	id   uint32        // the client's session id
	kind ctlproto.Type // the request that opened it
}

// client is one host client's connection.
type client struct {
	conn     io.ReadWriteCloser
	out      chan queued   // to write to it
	gone     chan struct{} // closed when it is dropped or left
	goneOnce sync.Once
	sessions map[uint32]uint32 // its session id → the guest's; under Mux.mu
	// gen counts its hellos, each of which ends what came before: what
	// was queued under an earlier one is not written.
	gen atomic.Uint64
}

// queued is a message for a client, and the client's hello it belongs to.
type queued struct {
	gen uint64
	msg *ctlproto.Message
}

// New says hello to the guest on up and waits until ctx ends for the
// answer; what the guest wrote before it (frames an earlier connection
// left) is dropped. logf, when not nil, hears of dropped clients.
func New(ctx context.Context, up io.ReadWriteCloser, logf func(format string, args ...any)) (*Mux, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	m := &Mux{
		up:     up,
		logf:   logf,
		enc:    ctlproto.NewEncoder(up),
		routes: map[uint32]route{},
		done:   make(chan struct{}),
	}
	hello := make(chan int, 1)
	go m.read(hello)
	if err := m.send(&ctlproto.Message{Type: ctlproto.Hello, Version: ctlproto.Version}); err != nil {
		up.Close()
		return nil, err
	}
	select {
	case m.version = <-hello:
	case <-m.done:
		up.Close()
		return nil, fmt.Errorf("%w: %v", ctlclient.ErrNoAnswer, m.err)
	case <-ctx.Done():
		up.Close()
		return nil, fmt.Errorf("%w: %v", ctlclient.ErrNoAnswer, ctx.Err())
	}
	if m.version < 1 {
		up.Close()
		return nil, fmt.Errorf("the guest speaks protocol version %d", m.version)
	}
	return m, nil
}

// Version is the protocol version the guest speaks.
func (m *Mux) Version() int { return m.version }

// Done is closed once the guest's connection has ended.
func (m *Mux) Done() <-chan struct{} { return m.done }

// Close ends the guest's connection, and with it every client's.
func (m *Mux) Close() error {
	err := m.up.Close()
	<-m.done
	return err
}

// Dial connects to the guest's channel behind the unix socket path (a
// serial port's QEMU chardev) and says hello, as New.
func Dial(ctx context.Context, path string, logf func(format string, args ...any)) (*Mux, error) {
	up, err := new(net.Dialer).DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("dial control channel %s: %w", path, err)
	}
	m, err := New(ctx, up, logf)
	if err != nil {
		return nil, fmt.Errorf("control channel %s: %w", path, err)
	}
	return m, nil
}

// Listen serves the mux on a new unix socket at path, which only this
// user may connect to, until the listener it returns is closed (which
// removes the socket). A guest older than version 2 is refused: it knows
// no hangup, so the sessions a client left would stay.
func (m *Mux) Listen(path string) (net.Listener, error) {
	if m.version < 2 {
		return nil, fmt.Errorf("the guest speaks protocol version %d, without hangup: not shared", m.version)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	go m.Serve(l) //nolint:errcheck // ends with l
	return l, nil
}

// Serve serves each client that l accepts, until l fails.
func (m *Mux) Serve(l net.Listener) error {
	for {
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		go m.ServeConn(conn)
	}
}

// Client connects a client in this process.
func (m *Mux) Client(ctx context.Context) (*ctlclient.Client, error) {
	mine, theirs := net.Pipe()
	go m.ServeConn(mine)
	c, err := ctlclient.New(ctx, theirs)
	if err != nil {
		theirs.Close()
	}
	return c, err
}

// ServeConn serves one client on conn until it leaves or the guest's
// connection ends, and closes conn.
func (m *Mux) ServeConn(conn io.ReadWriteCloser) {
	c := &client{
		conn:     conn,
		out:      make(chan queued, queueLen),
		gone:     make(chan struct{}),
		sessions: map[uint32]uint32{},
	}
	m.mu.Lock()
	if m.ended {
		m.mu.Unlock()
		conn.Close()
		return
	}
	m.mu.Unlock()
	go m.write(c)
	dec := ctlproto.NewDecoder(conn)
	for {
		msg, err := dec.Decode()
		var me *ctlproto.MessageError
		if errors.As(err, &me) {
			// As the guest would answer it: the frame goes no further.
			c.reply(&ctlproto.Message{Session: me.Session, Type: ctlproto.Error, Error: me.Err.Error()})
			continue
		}
		if err != nil {
			break
		}
		m.fromClient(c, msg)
	}
	c.drop()
	m.hangUp(c)
}

// fromClient passes a client's message on to the guest under the guest
// session that stands for the client's.
func (m *Mux) fromClient(c *client, msg *ctlproto.Message) {
	if msg.Session == 0 {
		if msg.Type == ctlproto.Hello {
			c.gen.Add(1)
			m.hangUp(c)
			c.reply(&ctlproto.Message{Type: ctlproto.Hello, Version: m.version})
		} else {
			c.reply(&ctlproto.Message{Type: ctlproto.Error, Error: fmt.Sprintf("%s: session 0 is for hello", msg.Type)})
		}
		return
	}
	m.mu.Lock()
	id, open := c.sessions[msg.Session]
	switch {
	case open && msg.Type == ctlproto.Hangup:
		delete(c.sessions, msg.Session)
		delete(m.routes, id)
	case open:
	case msg.Type == ctlproto.Hangup || msg.Type == ctlproto.Window:
		m.mu.Unlock()
		return // for a session that has ended
	default:
		id = m.newSession()
		c.sessions[msg.Session] = id
		m.routes[id] = route{c: c, gen: c.gen.Load(), id: msg.Session, kind: msg.Type}
	}
	m.mu.Unlock()
	msg.Session = id
	// A failed write ends the guest's connection, which ends this client.
	_ = m.send(msg)
}

// newSession returns a guest session id that no route holds; under mu.
func (m *Mux) newSession() uint32 {
	for {
		m.next++
		if _, taken := m.routes[m.next]; m.next != 0 && !taken {
			return m.next
		}
	}
}

// hangUp ends the sessions client c has open in the guest.
func (m *Mux) hangUp(c *client) {
	m.mu.Lock()
	var ids []uint32
	for _, id := range c.sessions {
		delete(m.routes, id)
		ids = append(ids, id)
	}
	clear(c.sessions)
	m.mu.Unlock()
	for _, id := range ids {
		if m.send(&ctlproto.Message{Session: id, Type: ctlproto.Hangup}) != nil {
			return
		}
	}
}

// send writes one message to the guest.
func (m *Mux) send(msg *ctlproto.Message) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	return m.enc.Encode(msg)
}

// read routes the guest's messages to their clients until the connection
// ends; the first hello answer goes to hello.
func (m *Mux) read(hello chan<- int) {
	err := ctlproto.Receive(m.up, func(v int) { hello <- v }, m.toClient)
	m.mu.Lock()
	m.err, m.ended = err, true
	m.mu.Unlock()
	// The writers send what is queued, then close their clients.
	close(m.done)
}

// toClient delivers a guest message to the client whose session it is.
func (m *Mux) toClient(msg *ctlproto.Message) {
	m.mu.Lock()
	r, ok := m.routes[msg.Session]
	if ok && ends(r.kind, msg) {
		delete(m.routes, msg.Session)
		delete(r.c.sessions, r.id)
	}
	m.mu.Unlock()
	if !ok {
		return // a session whose client has gone
	}
	msg.Session = r.id
	q := queued{gen: r.gen, msg: msg}
	select {
	case r.c.out <- q:
		return
	case <-r.c.gone:
		return
	default:
	}
	stall := time.NewTimer(stallLimit)
	defer stall.Stop()
	select {
	case r.c.out <- q:
	case <-r.c.gone:
	case <-stall.C:
		m.logf("control channel: a client read nothing for %v; dropped", stallLimit)
		r.c.drop()
	}
}

// ends says whether msg is the last of a session opened by a kind request.
func ends(kind ctlproto.Type, msg *ctlproto.Message) bool {
	switch msg.Type {
	case ctlproto.Error, ctlproto.Exit:
		return true
	case ctlproto.StatusReq:
		// A subscription's first message is the status; it ends there
		// only when the workload has exited already.
		return kind != ctlproto.Events || (msg.Status != nil && msg.Status.Phase == ctlproto.PhaseExited)
	case ctlproto.Event:
		return msg.Event != nil && msg.Event.Name == ctlproto.EventExited
	}
	return false
}

// write writes client c's queue to it until it goes or, once the guest's
// connection has ended, its queue is empty.
func (m *Mux) write(c *client) {
	defer c.drop()
	enc := ctlproto.NewEncoder(c.conn)
	for {
		var q queued
		select {
		case q = <-c.out:
		case <-c.gone:
			return
		case <-m.done:
			select {
			case q = <-c.out:
			default:
				return
			}
		}
		if q.gen != c.gen.Load() {
			continue // of a session its hello ended
		}
		if enc.Encode(q.msg) != nil {
			return
		}
	}
}

// reply queues an answer the mux gives itself.
func (c *client) reply(msg *ctlproto.Message) {
	select {
	case c.out <- queued{gen: c.gen.Load(), msg: msg}:
	case <-c.gone:
	}
}

// drop ends client c's connection, once.
func (c *client) drop() {
	c.goneOnce.Do(func() {
		close(c.gone)
		c.conn.Close()
	})
}
