package netconf

import (
	"net/netip"
	"testing"

	"github.com/ginit-dev/ginit/internal/dhcp4"
)

func TestUDP4RoundTrip(t *testing.T) {
	payload := []byte("a DHCP message, odd length")
	p := udp4(payload)
	// A valid IPv4 header checksums to zero.
	if c := checksum(p[:20], 0); c != 0 {
		t.Errorf("IP header checksum does not verify: %#x", c)
	}
	// As the server sees it: to port 67. Turn it round to port 68.
	p[20+2], p[20+3] = 0, 68
	got, ok := udpPayload(p)
	if !ok || string(got) != string(payload) {
		t.Errorf("udpPayload(udp4(%q)) = %q, %v", payload, got, ok)
	}
	if _, ok := udpPayload(p[:25]); ok {
		t.Errorf("udpPayload(truncated) ok")
	}
}

func TestXIDDoesNotRepeat(t *testing.T) {
	seen := map[uint32]bool{}
	for i := 0; i < 100; i++ {
		seen[xid()] = true
	}
	if len(seen) < 95 {
		t.Errorf("100 xids, %d distinct", len(seen))
	}
}

func TestLeaseRoutes(t *testing.T) {
	l := dhcp4.Lease{Addr: netip.MustParsePrefix("192.0.2.50/24"), Routers: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		Static: []dhcp4.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("198.51.100.1")},
			{Dst: netip.MustParsePrefix("203.0.113.0/24"), Gw: netip.MustParseAddr("192.0.2.9")},
			{Dst: netip.MustParsePrefix("198.51.100.0/30")},
		}}
	rs := leaseRoutes(2, 1026, l)
	if len(rs) != 3 {
		t.Fatalf("leaseRoutes = %v; want the 3 classless routes, no Router option", rs)
	}
	// A gateway outside the lease's subnet is taken as on the link.
	if !rs[0].OnLink || rs[1].OnLink || rs[2].Gw.IsValid() {
		t.Errorf("leaseRoutes = %+v; want the first on-link, the second via its gateway, the third direct", rs)
	}
	for _, r := range rs {
		if r.Src != l.Addr.Addr() || r.Index != 2 || r.Metric != 1026 || r.Protocol != 16 /* RTPROT_DHCP */ {
			t.Errorf("route %+v: want source 192.0.2.50, link 2, metric 1026, protocol dhcp", r)
		}
	}
}
