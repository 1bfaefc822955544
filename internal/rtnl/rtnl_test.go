package rtnl

import (
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// inNewNetns moves the test's locked thread into a fresh network namespace,
// so it changes no link of the machine. Needs root.
func inNewNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace (CI runs as root)")
	}
	runtime.LockOSThread()
	// The thread is left in the namespace and never unlocked: the Go runtime
	// then retires it when the test goroutine ends.
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare(CLONE_NEWNET): %v", err)
	}
}

func TestLinkAddrRoute(t *testing.T) {
	inNewNetns(t)
	lo, err := Index("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := SetUp(lo); err != nil {
		t.Fatalf("SetUp(lo): %v", err)
	}
	ifi, err := net.InterfaceByIndex(lo)
	if err != nil || ifi.Flags&net.FlagUp == 0 {
		t.Fatalf("lo flags = %v, %v; want up", ifi, err)
	}
	addr := net.IPNet{IP: net.IPv4(192, 0, 2, 10).To4(), Mask: net.CIDRMask(24, 32)}
	if err := ReplaceAddr(lo, addr); err != nil {
		t.Fatalf("ReplaceAddr: %v", err)
	}
	// Replacing the same address again is not an error.
	if err := ReplaceAddr(lo, addr); err != nil {
		t.Fatalf("ReplaceAddr again: %v", err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range addrs {
		if a.String() == "192.0.2.10/24" {
			found = true
		}
	}
	if !found {
		t.Errorf("lo addresses = %v; want 192.0.2.10/24 among them", addrs)
	}
	if err := ReplaceRoute(Route{Gw: net.IPv4(192, 0, 2, 1), Index: lo, Protocol: unix.RTPROT_DHCP}); err != nil {
		t.Fatalf("ReplaceRoute(default via 192.0.2.1): %v", err)
	}
	routes, err := os.ReadFile("/proc/thread-self/net/route")
	if err != nil {
		t.Fatal(err)
	}
	// Destination 00000000 with gateway 192.0.2.1 (little-endian hex 010200C0).
	if !strings.Contains(string(routes), "00000000\t010200C0") {
		t.Errorf("/proc/net/route lacks the default route via 192.0.2.1:\n%s", routes)
	}
	if err := SetUp(99999); err == nil {
		t.Errorf("SetUp(no such link) succeeded; want an error")
	}
}
