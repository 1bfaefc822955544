package main

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The port is found by its name in sysfs, whichever vport it is.
func TestFindPort(t *testing.T) {
	sys := t.TempDir()
	for dir, name := range map[string]string{"vport0p1": "org.qemu.guest_agent.0\n", "vport1p1": "org.ginit.control\n", "vport1p2": ""} {
		if err := os.MkdirAll(filepath.Join(sys, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, dir, "name"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := findPort(sys, "org.ginit.control", 0); got != "/dev/vport1p1" {
		t.Errorf("findPort = %q; want /dev/vport1p1", got)
	}
	if got := findPort(sys, "org.other", 10*time.Millisecond); got != "" {
		t.Errorf("findPort of a missing name = %q; want none", got)
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
