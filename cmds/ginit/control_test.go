package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
