package netconf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/dhcp6"
	"github.com/ginit-dev/ginit/internal/rawsock"
)

// waker lets a control message wake a socket's reader: Recv returns
// os.ErrDeadlineExceeded once after each Wake.
type waker struct {
	mu      sync.Mutex
	pending bool
	s       *rawsock.Sock
}

func (w *waker) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = true
	_ = w.s.SetReadDeadline(time.Unix(1, 0))
}

// arm sets the deadline for the next read; false when a wake is pending.
func (w *waker) arm(deadline time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending {
		w.pending = false
		return false
	}
	_ = w.s.SetReadDeadline(deadline)
	return true
}

func (w *waker) recv(b []byte, deadline time.Time) (int, unix.Sockaddr, error) {
	if !w.arm(deadline) {
		return 0, nil, os.ErrDeadlineExceeded
	}
	return w.s.Recv(b)
}

// dhcp4Filter passes unfragmented UDP to port 68 (classic BPF over the IPv4
// header: the packet socket is SOCK_DGRAM), so the client does not see the
// machine's other traffic for as long as it runs.
var dhcp4Filter = []unix.SockFilter{
	{Code: 0x30, K: 9},             // ldb [9]: protocol
	{Code: 0x15, Jf: 6, K: 17},     // jeq UDP
	{Code: 0x28, K: 6},             // ldh [6]: flags, fragment offset
	{Code: 0x45, Jt: 4, K: 0x1fff}, // jset fragment: drop
	{Code: 0xb1},                   // ldxb 4*([0]&0xf): header length
	{Code: 0x48, K: 2},             // ldh [x+2]: destination port
	{Code: 0x15, Jf: 1, K: 68},     // jeq 68
	{Code: 0x06, K: 0xffff},        // accept
	{Code: 0x06},                   // drop
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// conn4 is DHCPv4 on one link: a packet socket for broadcasts and for every
// reply, and a UDP socket for unicasts to a server once there is an address.
type conn4 struct {
	waker
	index int
	udp   *rawsock.Sock
	buf   []byte
}

func openConn4(index int, name string) (*conn4, error) {
	// Protocol 0 receives nothing until bound: the filter is in place first.
	s, err := rawsock.Open(unix.AF_PACKET, unix.SOCK_DGRAM, 0, func(fd int) error {
		prog := unix.SockFprog{Len: uint16(len(dhcp4Filter)), Filter: &dhcp4Filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			return fmt.Errorf("attach filter: %w", err)
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: index})
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp4 packet socket: %w", err)
	}
	udp, err := rawsock.Open(unix.AF_INET, unix.SOCK_DGRAM, 0, func(fd int) error {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
		if err := bindToDevice(fd, name); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Port: 68})
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("dhcp4 udp socket: %w", err)
	}
	return &conn4{waker: waker{s: s}, index: index, udp: udp, buf: make([]byte, 1600)}, nil
}

func bindToDevice(fd int, name string) error {
	if err := unix.BindToDevice(fd, name); err != nil {
		return fmt.Errorf("bind to %s: %w", name, err)
	}
	return nil
}

func (c *conn4) Send(b []byte, to netip.Addr) error {
	if to.IsValid() {
		return c.udp.Send(b, &unix.SockaddrInet4{Port: 67, Addr: to.As4()})
	}
	pkt := udp4(b)
	return c.s.Send(pkt, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: c.index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}})
}

func (c *conn4) Recv(deadline time.Time) ([]byte, error) {
	for {
		n, _, err := c.recv(c.buf, deadline)
		if err != nil {
			return nil, err
		}
		if p, ok := udpPayload(c.buf[:n]); ok {
			return p, nil
		}
	}
}

func (c *conn4) Close() {
	c.s.Close()
	c.udp.Close()
}

// udp4 wraps a DHCP message from 0.0.0.0:68 to 255.255.255.255:67.
func udp4(payload []byte) []byte {
	const ihl, udpLen = 20, 8
	p := make([]byte, ihl+udpLen+len(payload))
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_UDP // version 4, TTL, protocol
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[16:20], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(p[10:], checksum(p[:ihl], 0))
	u := p[ihl:]
	binary.BigEndian.PutUint16(u[0:], 68)
	binary.BigEndian.PutUint16(u[2:], 67)
	binary.BigEndian.PutUint16(u[4:], uint16(udpLen+len(payload)))
	copy(u[udpLen:], payload)
	// Pseudo-header: source 0, destination broadcast, protocol, length.
	sum := uint32(0xffff) + 0xffff + unix.IPPROTO_UDP + uint32(len(u))
	cs := checksum(u, sum)
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], cs)
	return p
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// udpPayload returns the payload of an IPv4 UDP datagram to port 68.
func udpPayload(p []byte) ([]byte, bool) {
	if len(p) < 28 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_UDP {
		return nil, false
	}
	ihl := int(p[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(p[2:]))
	if ihl < 20 || total > len(p) || total < ihl+8 {
		return nil, false
	}
	u := p[ihl:total]
	if binary.BigEndian.Uint16(u[2:]) != 68 {
		return nil, false
	}
	l := int(binary.BigEndian.Uint16(u[4:]))
	if l < 8 || l > len(u) {
		return nil, false
	}
	return u[8:l], true
}

// conn6 is DHCPv6 on one link.
type conn6 struct {
	waker
	index int
	buf   []byte
}

func openConn6(index int, name string) (*conn6, error) {
	s, err := rawsock.Open(unix.AF_INET6, unix.SOCK_DGRAM, 0, func(fd int) error {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)
		if err := bindToDevice(fd, name); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet6{Port: dhcp6.ClientPort})
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp6 socket: %w", err)
	}
	return &conn6{waker: waker{s: s}, index: index, buf: make([]byte, 1600)}, nil
}

func (c *conn6) Send(b []byte) error {
	return c.s.Send(b, &unix.SockaddrInet6{Port: dhcp6.ServerPort, Addr: dhcp6.AllServers.As16(), ZoneId: uint32(c.index)})
}

func (c *conn6) Recv(deadline time.Time) ([]byte, error) {
	n, _, err := c.recv(c.buf, deadline)
	if err != nil {
		return nil, err
	}
	return c.buf[:n], nil
}

func (c *conn6) Close() { c.s.Close() }

// connRA receives router advertisements on one link and sends
// solicitations.
type connRA struct {
	s     *rawsock.Sock
	index int
	buf   []byte
}

func openConnRA(index int, name string) (*connRA, error) {
	s, err := rawsock.Open(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6, func(fd int) error {
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = 0xffffffff
		}
		f.Data[dhcp6.TypeRouterAdvertisement>>5] &^= 1 << (dhcp6.TypeRouterAdvertisement & 31)
		if err := unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
			return fmt.Errorf("icmpv6 filter: %w", err)
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)
		return bindToDevice(fd, name)
	})
	if err != nil {
		return nil, fmt.Errorf("router advertisement socket: %w", err)
	}
	return &connRA{s: s, index: index, buf: make([]byte, 1600)}, nil
}

var allRouters = netip.MustParseAddr("ff02::2").As16()

func (c *connRA) solicit() error {
	return c.s.Send(dhcp6.RouterSolicitation(), &unix.SockaddrInet6{Addr: allRouters, ZoneId: uint32(c.index)})
}

// next waits for the next router advertisement from a link-local router.
func (c *connRA) next() (dhcp6.RA, netip.Addr, error) {
	for {
		n, from, err := c.s.Recv(c.buf)
		if err != nil {
			return dhcp6.RA{}, netip.Addr{}, err
		}
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok {
			continue
		}
		router := netip.AddrFrom16(sa.Addr)
		if !router.IsLinkLocalUnicast() {
			continue
		}
		ra, err := dhcp6.ParseRA(c.buf[:n])
		if err != nil {
			continue
		}
		return ra, router, nil
	}
}

func (c *connRA) Close() { c.s.Close() }
