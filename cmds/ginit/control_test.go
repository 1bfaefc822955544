package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The ports are found by their names in sysfs, whichever vports they are.
func TestFindPorts(t *testing.T) {
	sys := t.TempDir()
	for dir, name := range map[string]string{"vport0p1": "org.qemu.guest_agent.0\n", "vport1p1": "org.ginit.control\n", "vport1p2": "", "vport1p3": "org.ginit.control.1\n", "vport1p4": "org.ginit.controller\n"} {
		if err := os.MkdirAll(filepath.Join(sys, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, dir, "name"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := findPorts(sys, "org.ginit.control", 0); strings.Join(got, " ") != "/dev/vport1p1 /dev/vport1p3" {
		t.Errorf("findPorts = %q; want /dev/vport1p1 /dev/vport1p3", got)
	}
	if got := findPorts(sys, "org.other", 10*time.Millisecond); len(got) != 0 {
		t.Errorf("findPorts of a missing name = %q; want none", got)
	}
}

func TestAcceptsTCP(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if !acceptsTCP(port) {
		t.Errorf("acceptsTCP(%d) = false with a listener", port)
	}
	l.Close()
	if acceptsTCP(port) {
		t.Errorf("acceptsTCP(%d) = true after the listener closed", port)
	}
}

func TestNotifyReady(t *testing.T) {
	for _, tt := range []struct {
		msg  string
		want bool
	}{
		{"READY=1", true},
		{"STATUS=Startup finished\nREADY=1", true},
		{"READY=1\nSTATUS=x\n", true},
		{"READY=0", false},
		{"STATUS=READY=1", false},
		{"", false},
	} {
		if got := notifyReady(tt.msg); got != tt.want {
			t.Errorf("notifyReady(%q) = %v; want %v", tt.msg, got, tt.want)
		}
	}
}

// READY=1 from the workload's pid ends the wait; the same from another
// process, or other messages, do not; closing the socket ends it too.
func TestAwaitNotifyReady(t *testing.T) {
	name := fmt.Sprintf("@ginit-test-notify-%d", os.Getpid())
	send := func(msg string) {
		t.Helper()
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Sendto(fd, []byte(msg), 0, &unix.SockaddrUnix{Name: "\x00" + name[1:]}); err != nil {
			t.Fatalf("send %q: %v", msg, err)
		}
	}
	f, err := listenNotify(name)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan bool, 1)
	go func() { got <- awaitNotifyReady(f, os.Getpid()) }()
	send("STATUS=starting")
	send("READY=1\nSTATUS=Startup finished")
	if !<-got {
		t.Errorf("READY=1 from the workload's pid: not ready")
	}

	go func() { got <- awaitNotifyReady(f, os.Getpid()+1) }()
	send("READY=1") // from a pid that is not the workload's
	select {
	case <-got:
		t.Fatalf("READY=1 from another pid ended the wait")
	case <-time.After(100 * time.Millisecond):
	}
	f.Close()
	if <-got {
		t.Errorf("a closed socket: ready")
	}
}
