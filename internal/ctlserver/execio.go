package ctlserver

import (
	"fmt"
	"os"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/pty"
)

// execIO is an exec's stdio: the child's ends, and the server's.
type execIO struct {
	child  [3]*os.File // the command's stdin, stdout, stderr; nil is /dev/null
	stdin  *os.File    // the server writes the command's input here
	out    [2]*os.File // the server reads stdout and stderr here
	master *os.File    // the terminal's master, with a tty
	opened []*os.File  // every file opened, for close
}

// newExecIO makes pipes, or with spec.TTY a terminal sized as asked.
func newExecIO(spec *ctlproto.ExecSpec) (*execIO, error) {
	x := &execIO{}
	if spec.TTY {
		master, slave, err := pty.Open()
		if err != nil {
			return nil, err
		}
		x.opened = append(x.opened, master, slave)
		if z := spec.Size; z != nil {
			if err := pty.SetSize(master, z.Rows, z.Cols); err != nil {
				x.close()
				return nil, err
			}
		}
		x.child = [3]*os.File{slave, slave, slave}
		x.out[0], x.master = master, master
		if spec.Stdin {
			x.stdin = master
		}
		return x, nil
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err != nil {
			return nil, nil, fmt.Errorf("pipe for exec: %w", err)
		}
		x.opened = append(x.opened, r, w)
		return r, w, nil
	}
	var err error
	if spec.Stdin {
		if x.child[0], x.stdin, err = pipe(); err != nil {
			x.close()
			return nil, err
		}
	}
	for i := range 2 {
		if x.out[i], x.child[i+1], err = pipe(); err != nil {
			x.close()
			return nil, err
		}
	}
	return x, nil
}

// closeChild closes the child's ends once it has them, so the server's
// reads end when the command's do.
func (x *execIO) closeChild() {
	for _, f := range x.child {
		if f != nil {
			f.Close()
		}
	}
}

// feed writes the host's input to the command until the host's eof (a
// closed channel) or the session's end. For a pipe, eof closes it; a
// terminal gets nothing more.
func (x *execIO) feed(in <-chan []byte, gone <-chan struct{}) {
	for {
		select {
		case data, ok := <-in:
			if !ok {
				if x.stdin != x.master {
					x.stdin.Close()
				}
				return
			}
			if _, err := x.stdin.Write(data); err != nil {
				return
			}
		case <-gone:
			return
		}
	}
}

// stopReading ends the server's reads of the output.
func (x *execIO) stopReading() {
	for _, f := range x.out {
		if f != nil {
			_ = f.SetReadDeadline(time.Now())
		}
	}
}

func (x *execIO) close() {
	for _, f := range x.opened {
		f.Close()
	}
}
