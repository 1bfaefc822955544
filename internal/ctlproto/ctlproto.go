// Package ctlproto is the control channel's protocol between a host and
// ginit: length-prefixed JSON frames on one byte stream (a virtio-serial
// port), each carrying a session id and a message type, so several sessions
// (execs, a status query, an event subscription) share the stream.
//
// A frame is the 4 bytes "GCTL", a big-endian uint32 length, and that many
// bytes of one JSON object, a Message. The magic lets a reader find the next
// frame after garbage: a serial port has no connection boundaries, and a
// host that died mid-frame leaves half of one behind.
//
// The package is a leaf: no syscalls, so it builds and tests anywhere.
package ctlproto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Version is the protocol version this package speaks, exchanged in hello.
// Version 2 added hangup and exec windows; a version 1 guest answers
// hangup and window with an error and ignores an exec's window.
const Version = 2

// PortName is the virtio-serial port's name, as the host's QEMU names it.
const PortName = "org.ginit.control"

// VsockPort is the AF_VSOCK port ginit serves the channel on, where the
// machine has a vsock transport; each connection is a channel of its own.
const VsockPort = 7180

// Frame limits: a frame's JSON is at most MaxFrame bytes, so a reader
// never allocates more than that for one; data messages carry at most
// MaxData bytes (base64 in JSON makes 4/3 of it).
const (
	MaxFrame = 256 << 10
	MaxData  = 32 << 10
	// MaxArgs bounds the number of argv and env entries of an exec.
	MaxArgs = 4096
	// MaxWindow bounds an exec's window and each grant, in messages.
	MaxWindow = 1 << 16
)

// Magic opens every frame.
var Magic = [4]byte{'G', 'C', 'T', 'L'}

const headerSize = 8

// Type is a message's type.
type Type string

// The messages. "host" and "guest" say who sends them.
const (
	// Hello (host, session 0) starts a connection: the guest forgets the
	// sessions of an earlier one and answers with hello and its Version.
	Hello Type = "hello"
	// Exec (host, new session) runs Exec; the guest answers with stdout
	// and stderr data and ends the session with exit.
	Exec Type = "exec"
	// Stdin (host), Stdout and Stderr (guest) carry Data of an exec.
	Stdin  Type = "stdin"
	Stdout Type = "stdout"
	Stderr Type = "stderr"
	// EOF (host) closes an exec's stdin.
	EOF Type = "eof"
	// Signal (host) sends Signal to an exec's process on its session, or,
	// on a new session, to the workload; the latter is answered with status.
	Signal Type = "signal"
	// Resize (host) sets the window Size of an exec's terminal on its
	// session, or, on a new session, of the console, the workload's
	// terminal (whose foreground gets SIGWINCH); the latter is answered
	// with status.
	Resize Type = "resize"
	// Exit (guest) ends an exec's session with its status (128+signal
	// when a signal killed it), and Error when the command did not start.
	Exit Type = "exit"
	// StatusReq (host, new session) asks for the Status; the guest answers
	// with one status message, which ends the session.
	StatusReq Type = "status"
	// Events (host, new session) subscribes to events: the guest sends the
	// status now, then an event message for each, and ends the session
	// after the exited event.
	Events Type = "events"
	// Event (guest) is one Event of a subscription.
	Event Type = "event"
	// Stop (host, new session) stops the machine as its power button does;
	// answered with status.
	Stop Type = "stop"
	// Error (guest) ends a session: the request was refused or malformed.
	Error Type = "error"
	// Hangup (host) ends a session as the end of its connection would: an
	// exec's command gets SIGHUP, a subscription stops. Not answered; a
	// session that has ended already is not an error. It lets one
	// connection carry the sessions of many clients, ending one client's
	// without a new hello (version 2).
	Hangup Type = "hangup"
	// Window (host, on an exec's session) lets the guest send Window more
	// stdout and stderr messages, for an exec that asked for flow control
	// (ExecSpec.Window), so that a host that reads slowly holds up its own
	// command only (version 2).
	Window Type = "window"
)

// Message is one frame's content. Which fields are set depends on Type.
type Message struct {
	Session uint32 `json:"session"`
	Type    Type   `json:"type"`

	Version int       `json:"version,omitempty"` // hello
	Exec    *ExecSpec `json:"exec,omitempty"`    // exec
	Data    []byte    `json:"data,omitempty"`    // stdin, stdout, stderr
	Signal  int       `json:"signal,omitempty"`  // signal
	Size    *WinSize  `json:"size,omitempty"`    // resize
	Exit    int       `json:"exit,omitempty"`    // exit
	Status  *Status   `json:"status,omitempty"`  // status
	Event   *EventMsg `json:"event,omitempty"`   // event
	Error   string    `json:"error,omitempty"`   // error, exit
	Window  int       `json:"window,omitempty"`  // window
}

// ExecSpec is a command to run inside the workload's root. Empty fields
// take the workload's own: its environment (Env entries are added over
// it, as `docker exec -e` does), working directory and user.
type ExecSpec struct {
	Argv  []string `json:"argv"`
	Env   []string `json:"env,omitempty"` // NAME=VALUE
	Dir   string   `json:"dir,omitempty"`
	User  string   `json:"user,omitempty"` // name or uid, [:group]
	TTY   bool     `json:"tty,omitempty"`  // a pseudo-terminal for stdio
	Size  *WinSize `json:"size,omitempty"` // the terminal's first size
	Stdin bool     `json:"stdin,omitempty"`
	// Window, when not 0, is how many stdout and stderr messages the guest
	// sends before it waits for window messages granting more (version 2).
	Window int `json:"window,omitempty"`
}

// WinSize is a terminal's size in characters.
type WinSize struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// The phases of a machine, in order.
const (
	PhaseBooting  = "booting"  // the root is not mounted yet
	PhaseStarting = "starting" // the root is mounted, the workload not started yet
	PhaseRunning  = "running"
	PhaseStopping = "stopping" // a stop was asked for; the workload still runs
	PhaseExited   = "exited"   // the workload has ended; the machine shuts down
)

// Status is the machine's state.
type Status struct {
	Phase string `json:"phase"`
	// Boot is the boot's phases in order, in milliseconds since the
	// kernel started.
	Boot []BootPhase `json:"boot,omitempty"`
	Pid  int         `json:"pid,omitempty"` // the workload's, once started
	// Ready is set once the workload is ready: started, and each TCP port
	// of the image's ExposedPorts accepts connections inside the machine.
	Ready bool `json:"ready,omitempty"`
	// Exit is the workload's status once it has ended.
	Exit *int `json:"exit,omitempty"`
}

// BootPhase is one step of the boot and when it ended.
type BootPhase struct {
	Name string `json:"name"`
	MS   int64  `json:"ms"`
}

// The events.
const (
	EventStarted  = "started"
	EventReady    = "ready"
	EventStopping = "stopping"
	EventExited   = "exited"
)

// EventMsg is something that happened to the workload.
type EventMsg struct {
	Name string `json:"name"`
	MS   int64  `json:"ms"`             // since the kernel started
	Pid  int    `json:"pid,omitempty"`  // started
	Exit *int   `json:"exit,omitempty"` // exited
}

// Encode returns m as one frame. It fails for a message that breaks the
// limits, so a sender cannot make a frame its peer refuses.
func Encode(m *Message) ([]byte, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	if len(body) > MaxFrame {
		return nil, fmt.Errorf("encode %s message: %d bytes, over the %d byte frame limit", m.Type, len(body), MaxFrame)
	}
	frame := make([]byte, headerSize, headerSize+len(body))
	copy(frame, Magic[:])
	binary.BigEndian.PutUint32(frame[4:], uint32(len(body)))
	return append(frame, body...), nil
}

// MessageError is a frame that was whole but whose message is not valid:
// the session it names (0 when it names none) ends with an error, and the
// stream goes on.
type MessageError struct {
	Session uint32
	Err     error
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("session %d: %v", e.Session, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }

// Decoder reads messages from a stream, skipping garbage between frames.
type Decoder struct {
	r       io.Reader
	buf     []byte // read but not yet consumed
	skipped int64  // bytes skipped as garbage since the last Skipped call
}

// NewDecoder reads frames from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: r} }

// ErrClosed is a channel whose other end or this one closed it.
var ErrClosed = errors.New("the control channel closed")

// Receive reads the frames a host gets from r until reading fails, and
// returns why (ErrClosed for a connection that ended). What comes before
// the answer to hello (session 0) is what an earlier connection left, and
// is dropped; hello gets the answer's version, and fn each valid message
// after it. Frames that are not valid messages are skipped.
func Receive(r io.Reader, hello func(version int), fn func(*Message)) error {
	dec := NewDecoder(r)
	greeted := false
	for {
		m, err := dec.Decode()
		var me *MessageError
		switch {
		case errors.As(err, &me):
			continue
		case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
			return ErrClosed
		case err != nil:
			return err
		case !greeted:
			if m.Type == Hello && m.Session == 0 {
				greeted = true
				hello(m.Version)
			}
		default:
			fn(m)
		}
	}
}

// Skipped returns how many bytes were skipped as garbage since it was last
// called.
func (d *Decoder) Skipped() int64 {
	n := d.skipped
	d.skipped = 0
	return n
}

// Decode reads the next message. A read error ends the stream and is
// returned as it is (io.EOF at its end). Bytes that do not start a frame,
// and a header whose length is over MaxFrame, are skipped up to the next
// magic. A frame whose body is not a valid message gives *MessageError, and
// the next call reads on after it.
func (d *Decoder) Decode() (*Message, error) {
	for {
		i := bytes.Index(d.buf, Magic[:])
		if i < 0 {
			// Keep what may be the start of a magic split across reads.
			keep := len(Magic) - 1
			if len(d.buf) < keep {
				keep = len(d.buf)
			}
			d.skipped += int64(len(d.buf) - keep)
			d.buf = append(d.buf[:0], d.buf[len(d.buf)-keep:]...)
			if err := d.fill(); err != nil {
				return nil, err
			}
			continue
		}
		d.skipped += int64(i)
		d.buf = d.buf[i:]
		for len(d.buf) < headerSize {
			if err := d.fill(); err != nil {
				return nil, err
			}
		}
		n := int(binary.BigEndian.Uint32(d.buf[4:headerSize]))
		if n > MaxFrame || n == 0 {
			// Not a frame we would accept: skip its magic, look again.
			d.skipped += int64(len(Magic))
			d.buf = d.buf[len(Magic):]
			continue
		}
		for len(d.buf) < headerSize+n {
			if err := d.fill(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
		}
		m, err := parse(d.buf[headerSize : headerSize+n])
		if err != nil {
			// Its length may have been garbage too: look for the next
			// frame inside what it claimed.
			d.buf = d.buf[len(Magic):]
			return nil, err
		}
		d.buf = d.buf[headerSize+n:]
		return m, nil
	}
}

// fill reads more of the stream into buf.
func (d *Decoder) fill() error {
	if cap(d.buf)-len(d.buf) < 4096 {
		nb := make([]byte, len(d.buf), 2*cap(d.buf)+8192)
		copy(nb, d.buf)
		d.buf = nb
	}
	n, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
	d.buf = d.buf[:len(d.buf)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// parse reads one frame's body into a message and checks it.
func parse(body []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		// The session, if the object names one, is the one to end.
		var head struct {
			Session uint32 `json:"session"`
		}
		_ = json.Unmarshal(body, &head)
		return nil, &MessageError{Session: head.Session, Err: fmt.Errorf("malformed message: %w", err)}
	}
	if err := m.check(); err != nil {
		return nil, &MessageError{Session: m.Session, Err: err}
	}
	return &m, nil
}

var errNoArgv = errors.New("exec: empty argv")

// check says whether m is a message of a known type within the limits.
// What a type's fields mean for a session is the server's to judge.
func (m *Message) check() error {
	switch m.Type {
	case Hello, Stdin, Stdout, Stderr, EOF, Exit, StatusReq, Events, Event, Stop, Error, Hangup:
	case Exec:
		e := m.Exec
		if e == nil || len(e.Argv) == 0 || e.Argv[0] == "" {
			return errNoArgv
		}
		if e.Window < 0 || e.Window > MaxWindow {
			return fmt.Errorf("exec: window %d is not 0 to %d messages", e.Window, MaxWindow)
		}
		if len(e.Argv) > MaxArgs || len(e.Env) > MaxArgs {
			return fmt.Errorf("exec: more than %d argv or env entries", MaxArgs)
		}
		for _, kv := range e.Env {
			if strings.IndexByte(kv, '=') <= 0 {
				return fmt.Errorf("exec: env entry %q is not NAME=VALUE", kv)
			}
		}
	case Window:
		if m.Window <= 0 || m.Window > MaxWindow {
			return fmt.Errorf("window: %d is not 1 to %d messages", m.Window, MaxWindow)
		}
	case Signal:
		if m.Signal <= 0 || m.Signal > 64 {
			return fmt.Errorf("signal: %d is not a signal number", m.Signal)
		}
	case Resize:
		if m.Size == nil {
			return errors.New("resize: no size")
		}
	case "":
		return errors.New("message without a type")
	default:
		return fmt.Errorf("unknown message type %q", m.Type)
	}
	if len(m.Data) > MaxData {
		return fmt.Errorf("%s: %d data bytes, over the limit of %d", m.Type, len(m.Data), MaxData)
	}
	return nil
}

// Encoder writes messages to a stream, one whole frame per Write.
type Encoder struct {
	w io.Writer
}

// NewEncoder writes frames to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes m as one frame.
func (e *Encoder) Encode(m *Message) error {
	frame, err := Encode(m)
	if err != nil {
		return err
	}
	if _, err := e.w.Write(frame); err != nil {
		return fmt.Errorf("write %s message: %w", m.Type, err)
	}
	return nil
}
