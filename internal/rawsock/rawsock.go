// Package rawsock wraps a socket file descriptor in the Go runtime's poller,
// so reads take deadlines and Close wakes a blocked reader: what netlink,
// packet and raw ICMPv6 sockets need, without a socket library.
package rawsock

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Sock is a non-blocking socket.
type Sock struct {
	f *os.File
}

// Open makes a socket and hands it to the poller; setup (options, bind)
// runs on the descriptor first, and the socket is closed if it fails.
func Open(domain, typ, proto int, setup func(fd int) error) (*Sock, error) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, fmt.Errorf("socket(%d, %d, %d): %w", domain, typ, proto, err)
	}
	if setup != nil {
		if err := setup(fd); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return &Sock{f: os.NewFile(uintptr(fd), "socket")}, nil
}

// Recv reads one datagram into b.
func (s *Sock) Recv(b []byte) (n int, from unix.Sockaddr, err error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return 0, nil, err
	}
	rerr := rc.Read(func(fd uintptr) bool {
		n, from, err = unix.Recvfrom(int(fd), b, 0)
		return err != unix.EAGAIN
	})
	if rerr != nil {
		return 0, nil, rerr
	}
	return n, from, err
}

// Send writes one datagram to to (nil: the connected peer).
func (s *Sock) Send(b []byte, to unix.Sockaddr) (err error) {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	werr := rc.Write(func(fd uintptr) bool {
		err = unix.Sendto(int(fd), b, 0, to)
		return err != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return err
}

// Control runs fn on the descriptor, for socket options after Open.
func (s *Sock) Control(fn func(fd int) error) error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// SetReadDeadline makes Recv give up at t (zero: never); the error is then
// os.ErrDeadlineExceeded.
func (s *Sock) SetReadDeadline(t time.Time) error { return s.f.SetReadDeadline(t) }

// Close closes the socket and wakes a reader blocked in Recv.
func (s *Sock) Close() error { return s.f.Close() }
