package dhcp6

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// ICMPv6 types of router discovery.
const (
	TypeRouterSolicitation  = 133
	TypeRouterAdvertisement = 134
)

// Forever is an infinite lifetime in a router advertisement.
const Forever = time.Duration(1<<63 - 1)

func raSecs(b []byte) time.Duration {
	v := binary.BigEndian.Uint32(b)
	if v == 0xffffffff {
		return Forever
	}
	return time.Duration(v) * time.Second
}

// Prefix is a prefix information option.
type Prefix struct {
	Prefix           netip.Prefix
	OnLink           bool
	Autonomous       bool // SLAAC: the kernel makes an address in it
	Valid, Preferred time.Duration
}

// RA is what a router advertisement says. The kernel applies its prefixes,
// routes and MTU itself; ginit reads the flags and the DNS options.
type RA struct {
	Managed  bool // M: addresses from DHCPv6
	Other    bool // O: other configuration (DNS) from DHCPv6
	Lifetime time.Duration
	MTU      int
	Prefixes []Prefix
	RDNSS    []netip.Addr
	DNSSL    []string
	// DNSLifetime is the lifetime of the RDNSS and DNSSL options; 0 with
	// options present withdraws them.
	DNSLifetime time.Duration
}

// SLAAC says whether the advertisement lets the kernel make an address.
func (ra RA) SLAAC() bool {
	for _, p := range ra.Prefixes {
		if p.Autonomous && p.Valid > 0 && p.Prefix.Bits() == 64 {
			return true
		}
	}
	return false
}

// ParseRA reads a router advertisement, from its ICMPv6 header on.
func ParseRA(b []byte) (RA, error) {
	var ra RA
	if len(b) < 16 || b[0] != TypeRouterAdvertisement || b[1] != 0 {
		return ra, errors.New("not a router advertisement")
	}
	ra.Managed, ra.Other = b[5]&0x80 != 0, b[5]&0x40 != 0
	ra.Lifetime = time.Duration(binary.BigEndian.Uint16(b[6:])) * time.Second
	for o := b[16:]; len(o) >= 2; {
		n := int(o[1]) * 8
		if n == 0 || n > len(o) {
			return ra, errors.New("router advertisement: bad option length")
		}
		d := o[2:n]
		switch o[0] {
		case 3: // prefix information
			if len(d) >= 30 && d[0] <= 128 {
				p := Prefix{
					OnLink: d[1]&0x80 != 0, Autonomous: d[1]&0x40 != 0,
					Valid: raSecs(d[2:]), Preferred: raSecs(d[6:]),
				}
				p.Prefix = netip.PrefixFrom(netip.AddrFrom16([16]byte(d[14:30])), int(d[0])).Masked()
				ra.Prefixes = append(ra.Prefixes, p)
			}
		case 5: // MTU
			if len(d) >= 6 {
				ra.MTU = int(binary.BigEndian.Uint32(d[2:]))
			}
		case 25: // RDNSS
			if len(d) >= 22 {
				ra.DNSLifetime = raSecs(d[2:])
				ra.RDNSS = append(ra.RDNSS, addrs16(d[6:])...)
			}
		case 31: // DNSSL
			if len(d) >= 6 {
				ra.DNSLifetime = raSecs(d[2:])
				ra.DNSSL = append(ra.DNSSL, Names(d[6:])...)
			}
		}
		o = o[n:]
	}
	return ra, nil
}

// RouterSolicitation is the message that asks routers to advertise now.
func RouterSolicitation() []byte {
	return []byte{TypeRouterSolicitation, 0, 0, 0, 0, 0, 0, 0}
}
