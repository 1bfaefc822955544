// Package dhcp4 is a DHCPv4 client (RFC 2131) as a state machine: it is
// fed the time and the messages that arrive, and answers with the message
// to send and the lease to apply or drop. It does no I/O and reads no clock,
// so every state change tests at the packet level; netconf drives it with a
// real socket and timer. Messages are encoded with
// github.com/insomniacslk/dhcp/dhcpv4.
package dhcp4

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Route is a static route from option 121; an invalid Gw is on the link.
type Route struct {
	Dst netip.Prefix
	Gw  netip.Addr
}

// Lease is what an ACK gave.
type Lease struct {
	Addr     netip.Prefix
	Server   netip.Addr // server identifier, where renewals go
	Routers  []netip.Addr
	Static   []Route // classless static routes (option 121)
	MTU      int
	DNS      []netip.Addr
	Search   []string // option 119, or the domain name (15)
	Hostname string

	Start time.Time     // when the request that got the lease went out
	Time  time.Duration // lease time; 0 is infinite
	T1    time.Duration // renew after
	T2    time.Duration // rebind after
}

// Expiry is when the lease ends; zero when it never does.
func (l Lease) Expiry() time.Time {
	if l.Time == 0 {
		return time.Time{}
	}
	return l.Start.Add(l.Time)
}

// Remaining is how long the lease has left at now; 0 when it has none or
// never ends.
func (l Lease) Remaining(now time.Time) time.Duration {
	if l.Time == 0 {
		return 0
	}
	if d := l.Expiry().Sub(now); d > 0 {
		return d
	}
	return 0
}

// Routes are the routes the lease asks for: its classless static routes
// when it has any (RFC 3442 says the Router option is then ignored), else a
// default route via the first router.
func (l Lease) Routes() []Route {
	if len(l.Static) > 0 {
		return l.Static
	}
	if len(l.Routers) > 0 {
		return []Route{{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gw: l.Routers[0]}}
	}
	return nil
}

// SameConfig says whether two leases configure the machine alike, times
// aside.
func (l Lease) SameConfig(o Lease) bool {
	return l.Addr == o.Addr && slices.Equal(l.Routes(), o.Routes()) && l.MTU == o.MTU &&
		slices.Equal(l.DNS, o.DNS) && slices.Equal(l.Search, o.Search) && l.Hostname == o.Hostname
}

func (l Lease) String() string {
	var b strings.Builder
	b.WriteString(l.Addr.String())
	for _, r := range l.Routes() {
		if r.Dst.Bits() == 0 {
			fmt.Fprintf(&b, " via %v", r.Gw)
		} else if r.Gw.IsValid() {
			fmt.Fprintf(&b, " route %v via %v", r.Dst, r.Gw)
		} else {
			fmt.Fprintf(&b, " route %v", r.Dst)
		}
	}
	if l.MTU != 0 {
		fmt.Fprintf(&b, " mtu %d", l.MTU)
	}
	if len(l.DNS) > 0 {
		fmt.Fprintf(&b, " dns %v", l.DNS)
	}
	if len(l.Search) > 0 {
		fmt.Fprintf(&b, " search %v", l.Search)
	}
	if l.Hostname != "" {
		fmt.Fprintf(&b, " hostname %s", l.Hostname)
	}
	if l.Time == 0 {
		b.WriteString(" lease infinite")
	} else {
		fmt.Fprintf(&b, " lease %v", l.Time)
	}
	fmt.Fprintf(&b, " from %v", l.Server)
	return b.String()
}

func addr4(b []byte) (netip.Addr, bool) {
	if len(b) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(b)), true
}

func addrs4(b []byte) []netip.Addr {
	var out []netip.Addr
	for ; len(b) >= 4; b = b[4:] {
		if a, _ := addr4(b[:4]); !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	return out
}

func seconds(b []byte) (time.Duration, bool) {
	if len(b) != 4 {
		return 0, false
	}
	s := binary.BigEndian.Uint32(b)
	if s == 0xffffffff {
		return 0, true
	}
	return time.Duration(s) * time.Second, true
}

// FromACK reads the lease out of an ACK; start is when the request went out.
func FromACK(ack *dhcpv4.DHCPv4, start time.Time) (Lease, error) {
	ip, ok := addr4(ack.YourIPAddr.To4())
	if !ok || !ip.IsGlobalUnicast() {
		return Lease{}, fmt.Errorf("ACK carries no usable address (%v)", ack.YourIPAddr)
	}
	bits := 0
	switch m := ack.Options.Get(dhcpv4.OptionSubnetMask); {
	case len(m) == 4:
		v := binary.BigEndian.Uint32(m)
		for v&(1<<31) != 0 {
			bits++
			v <<= 1
		}
		if v != 0 || bits == 0 {
			return Lease{}, fmt.Errorf("ACK has a bad subnet mask %v", m)
		}
	default:
		bits = 24
		if b := ip.As4()[0]; b < 128 {
			bits = 8
		} else if b < 192 {
			bits = 16
		}
	}
	l := Lease{Addr: netip.PrefixFrom(ip, bits), Start: start, Time: time.Hour}
	l.Server, _ = addr4(ack.Options.Get(dhcpv4.OptionServerIdentifier))
	l.Routers = addrs4(ack.Options.Get(dhcpv4.OptionRouter))
	for _, r := range ack.ClasslessStaticRoute() {
		dst, ok1 := addr4(r.Dest.IP.To4())
		gw, ok2 := addr4(r.Router.To4())
		if !ok1 || !ok2 {
			continue
		}
		ones, _ := r.Dest.Mask.Size()
		rt := Route{Dst: netip.PrefixFrom(dst, ones).Masked()}
		if !gw.IsUnspecified() {
			rt.Gw = gw
		}
		l.Static = append(l.Static, rt)
	}
	if m := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(m) == 2 {
		if v := int(binary.BigEndian.Uint16(m)); v >= 576 {
			l.MTU = v
		}
	}
	l.DNS = addrs4(ack.Options.Get(dhcpv4.OptionDomainNameServer))
	if d := ack.DomainSearch(); d != nil && len(d.Labels) > 0 {
		l.Search = d.Labels
	} else if n := strings.TrimSuffix(ack.DomainName(), "."); n != "" && !strings.ContainsAny(n, " \t\n") {
		l.Search = []string{n}
	}
	l.Hostname = strings.TrimRight(ack.HostName(), "\x00")
	if d, ok := seconds(ack.Options.Get(dhcpv4.OptionIPAddressLeaseTime)); ok {
		l.Time = d
	}
	if l.Time != 0 {
		l.T1, l.T2 = l.Time/2, l.Time*7/8
		if d, ok := seconds(ack.Options.Get(dhcpv4.OptionRenewTimeValue)); ok && d > 0 && d < l.Time {
			l.T1 = d
		}
		if d, ok := seconds(ack.Options.Get(dhcpv4.OptionRebindingTimeValue)); ok && d > l.T1 && d < l.Time {
			l.T2 = d
		} else if l.T2 <= l.T1 {
			l.T2 = l.T1 + (l.Time-l.T1)*3/4
		}
	}
	return l, nil
}
