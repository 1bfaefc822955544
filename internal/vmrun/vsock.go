package vmrun

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"os"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/qemu"
)

// VhostVsock is the host device behind QEMU's vhost-vsock.
const VhostVsock = "/dev/vhost-vsock"

// vsockUsable says whether this host can give a VM a vsock device: QEMU
// opens VhostVsock read-write. A variable, for tests.
var vsockUsable = func() bool {
	f, err := os.OpenFile(VhostVsock, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// vsockCID is the guest CID for a new VM when usable says the host has
// vhost-vsock, and 0 when it has not: the VM then has the serial ports
// alone, and nobody is told. CIDs are host-wide; 0 to 2 are reserved, and a
// random one from 3 up to 2^31 makes a collision (QEMU then fails to start,
// saying so) unlikely.
func vsockCID(usable func() bool, random func() uint32) uint32 {
	if !usable() {
		return 0
	}
	return 3 + random()%(1<<31-3)
}

func randomUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// vsockWait is how long a client tries the VM's vsock before the serial
// ports: a guest without the listener (an image without the vsock driver,
// or still booting) refuses at once.
const vsockWait = time.Second

// dialVsock is ctlclient.DialVsock; a variable, for tests.
var dialVsock = ctlclient.DialVsock

// channelWait is how long a client waits for the supervisor's channel to
// answer hello, which it does itself, at once.
const channelWait = time.Second

// DialControl connects to the VM's ginit on its control channel: on vsock
// when the VM has a CID and ginit answers there, else on the channel its
// supervisor serves once ginit has answered it (both take any number of
// clients at once), else on the first serial port no other client holds:
// a VM still booting, or one whose supervisor is gone. wait says whether to
// wait for a port when every one is held (else ctlclient.ErrBusy).
func (dir VMDir) DialControl(ctx context.Context, wait bool) (*ctlclient.Client, error) {
	if info, err := dir.ReadInfo(); err == nil && info.VsockCID != 0 {
		vctx, cancel := context.WithTimeout(ctx, vsockWait)
		c, err := dialVsock(vctx, info.VsockCID, ctlproto.VsockPort)
		cancel()
		if err == nil {
			return c, nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, channelWait)
	c, err := ctlclient.Dial(cctx, dir.Channel())
	cancel()
	if err == nil {
		return c, nil
	}
	socks := qemu.ControlSockets(dir.Control())
	if wait {
		return ctlclient.DialFree(ctx, socks)
	}
	return ctlclient.DialIdle(ctx, socks)
}
