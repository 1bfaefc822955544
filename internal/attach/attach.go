// Package attach joins the caller's terminal to a VM's serial console, as
// docker run -it joins it to a container's: the terminal in raw mode, so
// every key, Ctrl-C included, reaches the workload through the guest's
// terminal line discipline; a key sequence (ctrl-p ctrl-q by default)
// that detaches instead.
package attach

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// DefaultKeys are docker's detach keys.
const DefaultKeys = "ctrl-p,ctrl-q"

// ErrDetached is what a session returns when the detach keys were typed.
var ErrDetached = errors.New("detached from the console")

// eof is the terminal's end-of-file key (VEOF, Ctrl-D): what the console
// gets when the caller's input ends, so a reader in the guest sees its end.
const eof = 0x04

// ParseKeys reads docker's --detach-keys: keys separated by commas, each a
// single character or ctrl-X, where X is a letter or one of @ [ \ ] ^ _.
func ParseKeys(s string) ([]byte, error) {
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		name, ctrl := strings.CutPrefix(strings.ToLower(k), "ctrl-")
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case ctrl && len(name) == 1 && name[0] >= 'a' && name[0] <= 'z':
			keys = append(keys, name[0]-'a'+1)
		case ctrl && len(name) == 1 && strings.Contains(`@[\]^_`, name):
			keys = append(keys, name[0]-'@')
		default:
			return nil, fmt.Errorf("--detach-keys %q: key %q: want a character or ctrl-X, X a letter or one of @[\\]^_", s, k)
		}
	}
	return keys, nil
}

// Raw puts the terminal f in raw mode (no echo, no line editing, no
// signals from keys: they all go through), and returns what puts it back.
// A file that is not a terminal is left as it is.
func Raw(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return func() {}, nil
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("raw mode for %s: %w", f.Name(), err)
	}
	return func() { _ = term.Restore(fd, old) }, nil
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Size is the terminal f's rows and columns; ok is false when f is not a
// terminal or does not know.
func Size(f *os.File) (rows, cols int, ok bool) {
	cols, rows, err := term.GetSize(int(f.Fd()))
	if err != nil || rows <= 0 || cols <= 0 {
		return 0, 0, false
	}
	return rows, cols, true
}

// detachReader passes its input through until the detach keys arrive in
// order, and then fails with ErrDetached. Bytes that begin the sequence
// wait until the next byte shows whether it goes on; docker holds them
// back the same way.
type detachReader struct {
	r        io.Reader
	keys     []byte
	matched  int    // how many of keys the input has just typed
	pending  []byte // bytes to give before reading more
	detached bool
}

// DetachOn returns r, which fails with ErrDetached once keys are typed;
// with no keys it is r.
func DetachOn(r io.Reader, keys []byte) io.Reader {
	if len(keys) == 0 {
		return r
	}
	return &detachReader{r: r, keys: keys}
}

func (d *detachReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		if d.detached {
			return 0, ErrDetached
		}
		buf := make([]byte, len(p))
		n, err := d.r.Read(buf)
		for _, b := range buf[:n] {
			if b == d.keys[d.matched] {
				d.matched++
				if d.matched == len(d.keys) {
					d.detached = true
					break
				}
				continue
			}
			// The sequence broke: what it held back was typed input.
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched = 0
			if b == d.keys[0] {
				d.matched = 1
				continue
			}
			d.pending = append(d.pending, b)
		}
		if err != nil && !d.detached {
			// The input ended: what was held back was typed input too.
			d.pending = append(d.pending, d.keys[:d.matched]...)
			d.matched = 0
			if len(d.pending) > 0 {
				break // give what came first; the error repeats on the next read
			}
			return 0, err
		}
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// Session joins in and out to console: what the console prints goes to
// out, what in gives goes to the console, and when in ends the console
// gets the end-of-file key. It returns nil when the console ends (the VM
// did), ErrDetached when in did (the detach keys), or the error that
// ended the copy to out.
func Session(console io.ReadWriter, in io.Reader, out io.Writer) error {
	detached := make(chan error, 1)
	go func() {
		_, err := io.Copy(console, in)
		if err == nil {
			_, _ = console.Write([]byte{eof})
			return
		}
		if errors.Is(err, ErrDetached) {
			detached <- err
		}
	}()
	printed := make(chan error, 1)
	go func() {
		_, err := io.Copy(out, console)
		printed <- err
	}()
	select {
	case err := <-detached:
		return err
	case err := <-printed:
		return err
	}
}
