package attach

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ginit-dev/ginit/internal/pty"
)

func TestParseKeys(t *testing.T) {
	for in, want := range map[string][]byte{
		"ctrl-p,ctrl-q": {0x10, 0x11},
		"ctrl-a":        {0x01},
		"CTRL-Z":        {0x1a},
		"ctrl-@,ctrl-_": {0x00, 0x1f},
		"ctrl-[,ctrl-]": {0x1b, 0x1d},
		`ctrl-\,ctrl-^`: {0x1c, 0x1e},
		"a,ctrl-b,c":    {'a', 0x02, 'c'},
	} {
		if got, err := ParseKeys(in); err != nil || !bytes.Equal(got, want) {
			t.Errorf("ParseKeys(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ",", "ctrl-", "ctrl-1", "ctrl-pq", "alt-p", "ab"} {
		if got, err := ParseKeys(in); err == nil || !strings.HasPrefix(err.Error(), "--detach-keys ") {
			t.Errorf("ParseKeys(%q) = %v, %v; want an error naming --detach-keys", in, got, err)
		}
	}
}

func TestDetachOn(t *testing.T) {
	keys := []byte{0x10, 0x11} // ctrl-p ctrl-q
	for _, tc := range []struct {
		name, in, want string
		detached       bool
	}{
		{"plain", "ls\r", "ls\r", false},
		{"detach", "ls\r\x10\x11after", "ls\r", true},
		{"broken sequence passes", "a\x10b", "a\x10b", false},
		{"ctrl-p twice then q", "\x10\x10\x11", "\x10", true},
		{"ctrl-p at the end goes at the end of input", "x\x10", "x\x10", false},
		{"ctrl-q alone", "\x11", "\x11", false},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(DetachOn(r, keys))
			if string(got) != tc.want || errors.Is(err, ErrDetached) != tc.detached || (!tc.detached && err != nil) {
				t.Errorf("%s (one byte a read: %v): read %q, %v; want %q, detached %v", tc.name, oneByte, got, err, tc.want, tc.detached)
			}
		}
	}
}

// A VM's console as a socket pair: the test is the guest's side.
func consolePair(t *testing.T) (host, guest net.Conn) {
	host, guest = net.Pipe()
	t.Cleanup(func() { host.Close(); guest.Close() })
	return host, guest
}

func TestSessionEndsWithTheConsole(t *testing.T) {
	host, guest := consolePair(t)
	in, inw := io.Pipe()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Session(host, DetachOn(in, []byte{0x10, 0x11}), &out) }()
	go inw.Write([]byte("hi\r"))
	got := make([]byte, 3)
	if _, err := io.ReadFull(guest, got); err != nil || string(got) != "hi\r" {
		t.Fatalf("console got %q, %v; want the keys typed", got, err)
	}
	guest.Write([]byte("hi\r\n"))
	guest.Close()
	if err := <-done; err != nil || out.String() != "hi\r\n" {
		t.Errorf("Session = %v, printed %q; want nil and the console's output", err, out.String())
	}
}

func TestSessionDetaches(t *testing.T) {
	host, guest := consolePair(t)
	go io.Copy(io.Discard, guest)
	err := Session(host, DetachOn(strings.NewReader("ls\x10\x11"), []byte{0x10, 0x11}), io.Discard)
	if !errors.Is(err, ErrDetached) {
		t.Errorf("Session after ctrl-p ctrl-q = %v; want ErrDetached", err)
	}
}

// The end of the caller's input reaches the guest as the end-of-file key.
func TestSessionInputEnds(t *testing.T) {
	host, guest := consolePair(t)
	go Session(host, strings.NewReader("data\n"), io.Discard)
	got := make([]byte, 6)
	if _, err := io.ReadFull(guest, got); err != nil || string(got) != "data\n\x04" {
		t.Errorf("console got %q, %v; want the input and then Ctrl-D", got, err)
	}
}

func TestRawAndSize(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	if !IsTerminal(slave) || IsTerminal(mustPipe(t)) {
		t.Fatalf("IsTerminal: want true for a pty, false for a pipe")
	}
	restore, err := Raw(slave)
	if err != nil {
		t.Fatal(err)
	}
	// Raw: a CR typed arrives as it is, not as NL, and is not echoed.
	master.Write([]byte("a\r"))
	got := make([]byte, 2)
	if _, err := io.ReadFull(slave, got); err != nil || string(got) != "a\r" {
		t.Errorf("raw terminal read %q, %v; want \"a\\r\"", got, err)
	}
	restore()
	// Restored: the line discipline turns CR into NL again.
	master.Write([]byte("b\r"))
	if _, err := io.ReadFull(slave, got); err != nil || string(got) != "b\n" {
		t.Errorf("restored terminal read %q, %v; want \"b\\n\"", got, err)
	}
	if _, _, ok := Size(mustPipe(t)); ok {
		t.Errorf("Size(pipe) ok; want not a terminal")
	}
}

func mustPipe(t *testing.T) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r
}
