// Package ctlserver is the guest's end of the control channel: it reads
// ctlproto messages from the port, runs the sessions they open (exec,
// status, events, signal, stop) through a Backend that ginit provides, and
// writes their answers back.
//
// It runs inside PID 1: nothing here panics out, exits, or lets one
// session's bad input end another session or the channel.
package ctlserver

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/pty"
)

// Backend is what the server asks of the machine.
type Backend interface {
	// Status is the machine's state now.
	Status() ctlproto.Status
	// Exec starts spec with stdio (nil is /dev/null); with spec.TTY the
	// three are a terminal's slave, to become the command's controlling
	// terminal. A *imagespec.StartError says with which status the
	// command failed to start.
	Exec(spec *ctlproto.ExecSpec, stdio [3]*os.File) (Process, error)
	// SignalWorkload sends sig to the workload.
	SignalWorkload(sig syscall.Signal) error
	// ResizeConsole sets the console's window size: a terminal on the
	// host shows it, resized.
	ResizeConsole(size ctlproto.WinSize) error
	// Stop asks the machine to stop, as its power button does.
	Stop()
}

// Process is a command that Exec started.
type Process interface {
	Signal(sig syscall.Signal) error
	// Wait returns its status once it has ended: 128+signal when a signal
	// killed it.
	Wait() int
}

// Limits on what one connection may hold.
const (
	maxSessions = 64
	// stdinQueue is how many stdin messages may wait for a command that
	// does not read them before its session ends.
	stdinQueue = 64
	// drainTime is how long output is still read after a command ended,
	// when something it started keeps its stdout open.
	drainTime = time.Second
)

// Server serves one port. Serve reads it; answers are written to it from
// the sessions' goroutines, one whole frame at a time.
type Server struct {
	backend Backend
	logf    func(format string, args ...any)
	w       io.Writer

	wmu sync.Mutex // one frame at a time on w

	mu       sync.Mutex
	gen      uint64 // the connection; sessions of an earlier one are gone
	sessions map[uint32]*session
	events   map[*session]chan ctlproto.EventMsg
}

// New serves backend on rw; logf gets what the server has to say (never
// the content of a session).
func New(backend Backend, w io.Writer, logf func(format string, args ...any)) *Server {
	return &Server{
		backend:  backend,
		logf:     logf,
		w:        w,
		sessions: map[uint32]*session{},
		events:   map[*session]chan ctlproto.EventMsg{},
	}
}

// session is one request's state while it runs.
type session struct {
	id   uint32
	gen  uint64
	kind ctlproto.Type

	// exec: written by the reading goroutine only.
	stdin   chan []byte
	stdinOK bool // stdin not closed yet

	mu     sync.Mutex
	proc   Process
	master *os.File // the terminal's master, with tty
	ended  bool     // hung up: its connection or its input ended it
	gone   chan struct{}

	// Flow control, for an exec with a window: how many more output
	// messages the host takes (under mu), and a wake-up for a copier that
	// waits for a grant.
	windowed bool
	credit   int
	granted  chan struct{}
	// How many copiers wait for a grant: the drain after the command's
	// end does not count that time.
	waiting atomic.Int32
}

// spend takes one output message from the window, waiting for the host
// to grant one; false when the session is gone (the output is dropped).
func (ss *session) spend() bool {
	if !ss.windowed {
		return true
	}
	ss.waiting.Add(1)
	defer ss.waiting.Add(-1)
	for {
		ss.mu.Lock()
		if ss.credit > 0 {
			ss.credit--
			more := ss.credit > 0
			ss.mu.Unlock()
			if more {
				ss.wake() // the other copier may wait too
			}
			return true
		}
		ss.mu.Unlock()
		select {
		case <-ss.granted:
		case <-ss.gone:
			return false
		}
	}
}

// grant lets the copiers send n more messages.
func (ss *session) grant(n int) {
	ss.mu.Lock()
	ss.credit = min(ss.credit+n, ctlproto.MaxWindow)
	ss.mu.Unlock()
	ss.wake()
}

func (ss *session) wake() {
	select {
	case ss.granted <- struct{}{}:
	default:
	}
}

// hangUp ends a session from outside: its command gets SIGHUP, as on a
// terminal whose line dropped, and its goroutines stop sending.
func (ss *session) hangUp() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return
	}
	ss.ended = true
	close(ss.gone)
	if ss.proc != nil {
		_ = ss.proc.Signal(unix.SIGHUP)
	}
}

// started returns the command and its terminal's master, once it runs.
func (ss *session) started() (Process, *os.File) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.proc, ss.master
}

// closeStdin ends the command's input, once; called from the reading
// goroutine, the only one that sends on stdin.
func (ss *session) closeStdin() {
	if ss.stdinOK {
		ss.stdinOK = false
		close(ss.stdin)
	}
}

// Serve reads messages from r until it fails, and returns its error (io.EOF
// when the host disconnected). The sessions of the connection end with it.
func (s *Server) Serve(r io.Reader) error {
	defer s.reset()
	dec := ctlproto.NewDecoder(r)
	for {
		m, err := dec.Decode()
		if n := dec.Skipped(); n > 0 {
			s.logf("control channel: skipped %d bytes that were not a frame", n)
		}
		var me *ctlproto.MessageError
		switch {
		case errors.As(err, &me):
			s.refuse(me.Session, me.Err)
			continue
		case err != nil:
			return err
		}
		s.handleRecovered(m)
	}
}

// reset ends every session of the connection.
func (s *Server) reset() {
	s.mu.Lock()
	s.gen++
	old := s.sessions
	s.sessions = map[uint32]*session{}
	s.events = map[*session]chan ctlproto.EventMsg{}
	s.mu.Unlock()
	for _, ss := range old {
		ss.hangUp()
		ss.closeStdin()
	}
}

// handleRecovered is handle with a bug turned into an error on the session.
func (s *Server) handleRecovered(m *ctlproto.Message) {
	defer func() {
		if r := recover(); r != nil {
			s.logf("control channel: session %d: panic: %v", m.Session, r)
			s.refuse(m.Session, fmt.Errorf("internal error"))
		}
	}()
	s.handle(m)
}

// handle acts on one message from the host.
func (s *Server) handle(m *ctlproto.Message) {
	if m.Type == ctlproto.Hello {
		if m.Session != 0 {
			s.refuse(m.Session, errors.New("hello is for session 0"))
			return
		}
		s.reset()
		s.send(s.current(), &ctlproto.Message{Type: ctlproto.Hello, Version: ctlproto.Version})
		return
	}
	if m.Session == 0 {
		s.refuse(0, fmt.Errorf("%s: session 0 is for hello", m.Type))
		return
	}
	s.mu.Lock()
	ss := s.sessions[m.Session]
	s.mu.Unlock()
	if ss == nil && (m.Type == ctlproto.Hangup || m.Type == ctlproto.Window) {
		// For a session that has ended: a grant the host sent as the exit
		// came, or a hang-up that crossed it.
		return
	}
	if m.Type == ctlproto.Hangup {
		s.end(ss)
		return
	}
	if ss != nil {
		s.onSession(ss, m)
		return
	}
	switch m.Type {
	case ctlproto.StatusReq, ctlproto.Exec, ctlproto.Events, ctlproto.Stop, ctlproto.Signal, ctlproto.Resize:
	default:
		s.refuse(m.Session, fmt.Errorf("%s: no such session", m.Type))
		return
	}
	st := s.backend.Status()
	if m.Type != ctlproto.StatusReq && st.Phase == ctlproto.PhaseBooting {
		s.refuse(m.Session, fmt.Errorf("%s: the root is not mounted yet; only status is answered", m.Type))
		return
	}
	gen := s.current()
	switch m.Type {
	case ctlproto.StatusReq:
		s.sendStatus(gen, m.Session)
	case ctlproto.Stop:
		s.logf("control channel: stop requested")
		s.backend.Stop()
		s.sendStatus(gen, m.Session)
	case ctlproto.Signal:
		if err := s.backend.SignalWorkload(syscall.Signal(m.Signal)); err != nil {
			s.refuse(m.Session, err)
			return
		}
		s.sendStatus(gen, m.Session)
	case ctlproto.Resize:
		if err := s.backend.ResizeConsole(*m.Size); err != nil {
			s.refuse(m.Session, err)
			return
		}
		s.sendStatus(gen, m.Session)
	case ctlproto.Exec, ctlproto.Events:
		ss, err := s.open(m)
		if err != nil {
			s.refuse(m.Session, err)
			return
		}
		if m.Type == ctlproto.Exec {
			go s.runExec(ss, m.Exec)
		} else {
			go s.runEvents(ss)
		}
	}
}

// onSession acts on a message for a running session.
func (s *Server) onSession(ss *session, m *ctlproto.Message) {
	if ss.kind != ctlproto.Exec {
		s.fail(ss, fmt.Errorf("%s: not for a %s session", m.Type, ss.kind))
		return
	}
	switch m.Type {
	case ctlproto.Stdin:
		if !ss.stdinOK {
			s.fail(ss, errors.New("stdin: after eof, or the exec has no stdin"))
			return
		}
		select {
		case ss.stdin <- m.Data:
		default:
			s.fail(ss, fmt.Errorf("stdin: the command has not read %d messages", stdinQueue))
		}
	case ctlproto.EOF:
		ss.closeStdin()
	case ctlproto.Signal:
		p, _ := ss.started()
		if p == nil {
			s.fail(ss, errors.New("signal: the command has not started"))
			return
		}
		_ = p.Signal(syscall.Signal(m.Signal))
	case ctlproto.Window:
		if !ss.windowed {
			s.fail(ss, errors.New("window: the exec asked for no window"))
			return
		}
		ss.grant(m.Window)
	case ctlproto.Resize:
		_, master := ss.started()
		if master == nil {
			s.fail(ss, errors.New("resize: the exec has no terminal"))
			return
		}
		_ = pty.SetSize(master, m.Size.Rows, m.Size.Cols)
	default:
		s.fail(ss, fmt.Errorf("%s: not for a running exec", m.Type))
	}
}

// open registers a new session for request m.
func (s *Server) open(m *ctlproto.Message) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) >= maxSessions {
		return nil, fmt.Errorf("%s: %d sessions are open already", m.Type, maxSessions)
	}
	ss := &session{id: m.Session, gen: s.gen, kind: m.Type, gone: make(chan struct{})}
	if m.Type == ctlproto.Exec && m.Exec.Stdin {
		ss.stdin = make(chan []byte, stdinQueue)
		ss.stdinOK = true
	}
	if m.Type == ctlproto.Exec && m.Exec.Window > 0 {
		ss.windowed, ss.credit, ss.granted = true, m.Exec.Window, make(chan struct{}, 1)
	}
	if m.Type == ctlproto.Events {
		s.events[ss] = make(chan ctlproto.EventMsg, 16)
	}
	s.sessions[m.Session] = ss
	return ss, nil
}

// close forgets ss; its later messages go nowhere.
func (s *Server) close(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	delete(s.events, ss)
	s.mu.Unlock()
}

// end hangs up a running session and forgets it; called from the reading
// goroutine.
func (s *Server) end(ss *session) {
	s.close(ss)
	ss.hangUp()
	ss.closeStdin()
}

// fail ends a running session with an error; called from the reading
// goroutine.
func (s *Server) fail(ss *session, err error) {
	s.end(ss)
	s.send(ss.gen, &ctlproto.Message{Session: ss.id, Type: ctlproto.Error, Error: err.Error()})
}

// refuse answers a request that opened nothing with an error.
func (s *Server) refuse(id uint32, err error) {
	s.logf("control channel: session %d: %v", id, err)
	s.send(s.current(), &ctlproto.Message{Session: id, Type: ctlproto.Error, Error: err.Error()})
}

func (s *Server) current() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func (s *Server) sendStatus(gen uint64, id uint32) {
	st := s.backend.Status()
	s.send(gen, &ctlproto.Message{Session: id, Type: ctlproto.StatusReq, Status: &st})
}

// send writes m if its connection is still the current one.
func (s *Server) send(gen uint64, m *ctlproto.Message) bool {
	frame, err := ctlproto.Encode(m)
	if err != nil {
		s.logf("control channel: %v", err)
		return false
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.current() != gen {
		return false
	}
	_, err = s.w.Write(frame)
	return err == nil
}

// sendOn writes m for a session that is still open.
func (s *Server) sendOn(ss *session, m *ctlproto.Message) bool {
	select {
	case <-ss.gone:
		return false
	default:
	}
	m.Session = ss.id
	return s.send(ss.gen, m)
}

// Publish sends an event to every subscription.
func (s *Server) Publish(ev ctlproto.EventMsg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.events {
		select {
		case ch <- ev:
		default: // a subscriber this far behind has a full queue; it lost one
		}
	}
}

// runEvents sends the status, then the events until exited.
func (s *Server) runEvents(ss *session) {
	defer s.close(ss)
	s.mu.Lock()
	ch := s.events[ss]
	s.mu.Unlock()
	st := s.backend.Status()
	if !s.sendOn(ss, &ctlproto.Message{Type: ctlproto.StatusReq, Status: &st}) || st.Phase == ctlproto.PhaseExited || ch == nil {
		return
	}
	for {
		select {
		case ev := <-ch:
			if !s.sendOn(ss, &ctlproto.Message{Type: ctlproto.Event, Event: &ev}) || ev.Name == ctlproto.EventExited {
				return
			}
		case <-ss.gone:
			return
		}
	}
}

// runExec runs one exec session to its exit message.
func (s *Server) runExec(ss *session, spec *ctlproto.ExecSpec) {
	defer s.close(ss)
	defer func() {
		if r := recover(); r != nil {
			s.logf("control channel: exec session %d: panic: %v", ss.id, r)
			s.sendOn(ss, &ctlproto.Message{Type: ctlproto.Error, Error: "internal error"})
		}
	}()
	sio, err := newExecIO(spec)
	if err != nil {
		s.sendOn(ss, &ctlproto.Message{Type: ctlproto.Exit, Exit: imagespec.ExitRunFailed, Error: err.Error()})
		return
	}
	defer sio.close()
	proc, err := s.backend.Exec(spec, sio.child)
	sio.closeChild()
	if err != nil {
		code := imagespec.ExitRunFailed
		var se *imagespec.StartError
		if errors.As(err, &se) {
			code = se.Code
		}
		s.sendOn(ss, &ctlproto.Message{Type: ctlproto.Exit, Exit: code, Error: err.Error()})
		return
	}
	ss.mu.Lock()
	ss.proc, ss.master = proc, sio.master
	if ss.ended {
		_ = proc.Signal(unix.SIGHUP)
	}
	ss.mu.Unlock()
	if ss.stdin != nil {
		go sio.feed(ss.stdin, ss.gone)
	}
	var copiers sync.WaitGroup
	for i, t := range []ctlproto.Type{ctlproto.Stdout, ctlproto.Stderr} {
		if r := sio.out[i]; r != nil {
			copiers.Add(1)
			go func() {
				defer copiers.Done()
				s.copyOut(ss, t, r)
			}()
		}
	}
	code := proc.Wait()
	drained := make(chan struct{})
	go func() { copiers.Wait(); close(drained) }()
	drain(ss, sio, drained)
	// Nothing of the exec is left open once the host has its status.
	sio.close()
	s.sendOn(ss, &ctlproto.Message{Type: ctlproto.Exit, Exit: code})
}

// drain waits until the copiers are done (drained). What something the
// command started keeps open is read for drainTime more; time spent waiting
// for the host's window does not count, so a slow host loses nothing of
// the command's own output.
func drain(ss *session, sio *execIO, drained <-chan struct{}) {
	const tick = drainTime / 10
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for left := drainTime; left > 0; {
		select {
		case <-drained:
			return
		case <-ticker.C:
			if ss.waiting.Load() == 0 {
				left -= tick
			}
		}
	}
	sio.stopReading()
	<-drained
}

// copyOut sends what r gives as t messages until it ends.
func (s *Server) copyOut(ss *session, t ctlproto.Type, r *os.File) {
	buf := make([]byte, ctlproto.MaxData)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			// A session that is gone still reads, so the command is not
			// blocked on a full pipe.
			if ss.spend() {
				s.sendOn(ss, &ctlproto.Message{Type: t, Data: buf[:n]})
			}
		}
		if err != nil {
			return
		}
	}
}
