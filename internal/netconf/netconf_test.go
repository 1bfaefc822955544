package netconf

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestFromACKAndResolvConf(t *testing.T) {
	ack, err := dhcpv4.New(
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(10, 0, 2, 15)),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(net.IPv4(10, 0, 2, 2)),
		dhcpv4.WithDNS(net.IPv4(10, 0, 2, 3)),
		dhcpv4.WithServerIP(net.IPv4(10, 0, 2, 2)),
		dhcpv4.WithOption(dhcpv4.OptDomainName("example.test")),
	)
	if err != nil {
		t.Fatal(err)
	}
	l, err := FromACK("eth0", ack)
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr.String() != "10.0.2.15/24" || !l.Router.Equal(net.IPv4(10, 0, 2, 2)) {
		t.Errorf("FromACK = %v; want 10.0.2.15/24 via 10.0.2.2", l)
	}
	got := ResolvConfText([]Lease4{l, l})
	want := "search example.test\nnameserver 10.0.2.3\n"
	if got != want {
		t.Errorf("ResolvConfText = %q; want %q", got, want)
	}
	if _, err := FromACK("eth0", &dhcpv4.DHCPv4{}); err == nil {
		t.Errorf("FromACK(no address) succeeded; want an error")
	}
}
