// Package pty opens pseudo-terminal pairs: for tests that need a program to
// see a real terminal (line editing, Enter as CR, raw mode), and for ginit's
// exec with a terminal.
package pty

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open returns a new pseudo-terminal's master and slave. Neither becomes the
// caller's controlling terminal. The master stays non-blocking (its Fd is
// never taken), so its reads honour deadlines and Close ends them.
func Open() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	var n int
	err = control(m, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlock pty /dev/ptmx: %w", err)
		}
		var err error
		if n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN); err != nil {
			return fmt.Errorf("pty number of /dev/ptmx: %w", err)
		}
		return nil
	})
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open pty %s: %w", name, err)
	}
	return m, s, nil
}

// SetSize sets the terminal's size in characters, through its master or
// slave; the processes on it get SIGWINCH.
func SetSize(f *os.File, rows, cols uint16) error {
	return control(f, func(fd int) error {
		if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
			return fmt.Errorf("set size of %s: %w", f.Name(), err)
		}
		return nil
	})
}

// control runs fn on f's descriptor without taking it out of the poller.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	return ferr
}
