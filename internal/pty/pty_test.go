package pty

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// The pair behaves as a terminal in its default, cooked mode: a CR typed
// on the master reaches a reader of the slave as the end of a line (ICRNL),
// and is echoed back as CR LF.
func TestOpenCookedLine(t *testing.T) {
	m, s, err := Open()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	defer m.Close()
	defer s.Close()
	if _, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err != nil {
		t.Fatalf("TCGETS on the slave = %v; want a terminal", err)
	}
	if _, err := m.Write([]byte("hi\r")); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 16)
	n, err := s.Read(line)
	if err != nil || string(line[:n]) != "hi\n" {
		t.Errorf("slave read = %q, %v; want \"hi\\n\"", line[:n], err)
	}
	_ = m.SetReadDeadline(time.Now().Add(5 * time.Second))
	var echo []byte
	for !bytes.Contains(echo, []byte("hi\r\n")) {
		b := make([]byte, 16)
		n, err := m.Read(b)
		if err != nil {
			t.Fatalf("master read after %q: %v; want the echo hi\\r\\n", echo, err)
		}
		echo = append(echo, b[:n]...)
	}
}
