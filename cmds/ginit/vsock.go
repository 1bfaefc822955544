package main

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/ctlproto"
)

// serveVsock serves the control channel on AF_VSOCK port
// ctlproto.VsockPort as well, when the machine has a vsock transport (a
// host with vhost-vsock gave it a virtio-vsock device, and the image
// carries its driver): each connection is a channel of its own, so any
// number of hosts' clients talk at once. A machine without one costs a
// few seconds of a goroutine looking.
func (s *system) serveVsock() {
	log := s.b.log
	defer func() {
		if r := recover(); r != nil {
			log.Errorf("control channel on vsock: panic: %v", r)
		}
	}()
	ln, err := listenVsock(ctlproto.VsockPort, portWait)
	if err != nil {
		log.Debugf("control channel on vsock: %v", err)
		return
	}
	log.Infof("serving the control channel on vsock port %d", ctlproto.VsockPort)
	for {
		conn, err := acceptVsock(ln)
		if err != nil {
			log.Warnf("control channel on vsock: %v", err)
			time.Sleep(time.Second)
			continue
		}
		go func() {
			defer func() {
				if r := recover(); r != nil {
					log.Errorf("control channel on vsock: panic: %v", r)
				}
			}()
			defer conn.Close()
			srv := s.newServer(conn)
			defer s.dropServer(srv)
			_ = srv.Serve(conn)
		}()
	}
}

var errNoVsock = errors.New("no vsock transport")

// listenVsock listens on port once the machine has a vsock transport of
// its own (a local CID above the host's), waiting up to wait for its
// driver.
func listenVsock(port uint32, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for !hasVsockTransport() {
		if time.Now().After(deadline) {
			return nil, errNoVsock
		}
		time.Sleep(100 * time.Millisecond)
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket AF_VSOCK", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrVM{CID: unix.VMADDR_CID_ANY, Port: port}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind vsock", err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("listen vsock", err)
	}
	return os.NewFile(uintptr(fd), "vsock"), nil
}

// hasVsockTransport says whether the machine has a CID of its own: a
// guest transport (virtio-vsock) is loaded and bound.
func hasVsockTransport() bool {
	f, err := os.Open("/dev/vsock")
	if err != nil {
		return false
	}
	defer f.Close()
	cid, err := unix.IoctlGetUint32(int(f.Fd()), unix.IOCTL_VM_SOCKETS_GET_LOCAL_CID)
	return err == nil && cid > unix.VMADDR_CID_HOST && cid != unix.VMADDR_CID_ANY
}

// acceptVsock waits for a connection on ln, through Go's poller.
func acceptVsock(ln *os.File) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	if err := rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
		return aerr != unix.EAGAIN
	}); err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept vsock", aerr)
	}
	return os.NewFile(uintptr(nfd), "vsock-conn"), nil
}
