package vmrun

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/ctlserver"
	"github.com/ginit-dev/ginit/internal/ctlserver/ctltest"
)

// A VM gets a vsock device only where the host has a usable vhost-vsock,
// with a CID from 3 up.
func TestVsockCID(t *testing.T) {
	yes := func() bool { return true }
	no := func() bool { return false }
	for _, tt := range []struct {
		usable func() bool
		random uint32
		want   uint32
	}{
		{no, 7, 0},
		{yes, 0, 3},
		{yes, 7, 10},
		{yes, 1<<31 - 4, 1<<31 - 1},
		{yes, 1<<31 - 3, 3},
		{yes, 1<<32 - 1, 3 + (1<<32-1)%(1<<31-3)},
	} {
		got := vsockCID(tt.usable, func() uint32 { return tt.random })
		if got != tt.want {
			t.Errorf("vsockCID(usable=%v, random %d) = %d; want %d", tt.usable(), tt.random, got, tt.want)
		}
		if got != 0 && (got < 3 || got >= 1<<31) {
			t.Errorf("vsockCID(random %d) = %d: not a guest CID", tt.random, got)
		}
	}
}

// guest is a ginit's channel on a unix socket, as QEMU's chardev serves
// the serial port.
func serveGuest(t *testing.T, path string) {
	t.Helper()
	serveMachine(t, path, &ctltest.Machine{Phase: ctlproto.PhaseRunning})
}

// serveMachine serves m's channel on the unix socket path, as QEMU's
// chardev serves the serial port; the server of each connection is sent
// on the channel it returns.
func serveMachine(t *testing.T, path string, m *ctltest.Machine) <-chan *ctlserver.Server {
	t.Helper()
	servers := make(chan *ctlserver.Server, 16)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				srv := ctlserver.New(m, conn, t.Logf)
				select {
				case servers <- srv:
				default:
				}
				_ = srv.Serve(conn)
			}()
		}
	}()
	return servers
}

// DialControl tries the VM's vsock first when it has a CID, then the
// supervisor's channel, and the serial ports when neither answers.
func TestDialControl(t *testing.T) {
	defer func(d func(context.Context, uint32, uint32) (*ctlclient.Client, error)) { dialVsock = d }(dialVsock)
	for _, tt := range []struct {
		cid       uint32
		vsockUp   bool
		channel   bool // the supervisor serves the channel; else only the ports answer
		wantVsock bool // the client is the vsock one
	}{
		{cid: 0},
		{cid: 0, channel: true},
		{cid: 9, vsockUp: false},
		{cid: 9, vsockUp: false, channel: true},
		{cid: 9, vsockUp: true, channel: true, wantVsock: true},
	} {
		dir := State(t.TempDir()).VM("vm")
		if err := os.MkdirAll(string(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeJSON(dir.Info(), Info{Name: "vm", VsockCID: tt.cid}, 0o600); err != nil {
			t.Fatal(err)
		}
		if tt.channel {
			serveGuest(t, dir.Channel())
		} else {
			serveGuest(t, dir.Control())
		}
		var tried []uint32
		var vsockClient *ctlclient.Client
		dialVsock = func(ctx context.Context, cid, port uint32) (*ctlclient.Client, error) {
			tried = append(tried, cid, port)
			if !tt.vsockUp {
				return nil, syscall.ECONNRESET
			}
			a, b := net.Pipe()
			go func() { _ = ctlserver.New(&ctltest.Machine{Phase: ctlproto.PhaseRunning}, a, t.Logf).Serve(a) }()
			c, err := ctlclient.New(ctx, b)
			vsockClient = c
			return c, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := dir.DialControl(ctx, false)
		cancel()
		if err != nil {
			t.Fatalf("cid %d: DialControl: %v", tt.cid, err)
		}
		if st, err := c.Status(context.Background()); err != nil || st.Pid != 42 {
			t.Errorf("cid %d: status %+v, %v", tt.cid, st, err)
		}
		c.Close()
		if tt.cid == 0 && len(tried) != 0 {
			t.Errorf("a VM without a CID: vsock tried %v", tried)
		}
		if tt.cid != 0 && (len(tried) != 2 || tried[0] != tt.cid || tried[1] != ctlproto.VsockPort) {
			t.Errorf("cid %d: vsock tried %v; want the CID and port %d", tt.cid, tried, ctlproto.VsockPort)
		}
		if got := c == vsockClient && c != nil; got != tt.wantVsock {
			t.Errorf("cid %d, vsock up %v: on vsock %v; want %v", tt.cid, tt.vsockUp, got, tt.wantVsock)
		}
	}
}

// runningVM is a VM directory whose "QEMU" is a sleep running in it, as
// Live checks a VM's QEMU by its working directory.
func runningVM(t *testing.T) VMDir {
	t.Helper()
	dir := State(t.TempDir()).VM("vm")
	if err := os.MkdirAll(string(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	cmd.Dir = string(dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := os.WriteFile(dir.PID(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A running VM shows its guest's status when its ginit answers on the
// control channel, and QEMU's state, with the reason, when nothing does.
func TestLiveGuest(t *testing.T) {
	dir := runningVM(t)
	l, guestErr, err := dir.LiveGuest(time.Second)
	if err != nil || guestErr == nil || l.Phase != Running || l.Guest != nil || l.String() != "running" {
		t.Errorf("no channel: %+v, %v, %v; want running, no guest status and why", l, guestErr, err)
	}
	serveGuest(t, dir.Control())
	l, guestErr, err = dir.LiveGuest(10 * time.Second)
	if err != nil || guestErr != nil || l.Guest == nil || l.Guest.Pid != 42 || l.String() != "running (started)" {
		t.Errorf("a guest that answers: %+v (%s), %v, %v; want its status", l, l, guestErr, err)
	}
}
