// Package rtnl is the little of rtnetlink that ginit needs: list and watch
// links, set a link up and its MTU, add and remove addresses and routes. A
// full netlink library costs the image more than all of ginit's own code,
// so these few messages are written out here over golang.org/x/sys/unix.
package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/rawsock"
)

var seq atomic.Uint32

// request sends one rtnetlink message and waits for its acknowledgement, or
// for the end of a dump, handing each reply to each.
func request(typ uint16, flags uint16, body []byte, each func(m syscall.NetlinkMessage)) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	s := seq.Add(1)
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	msg = append(msg, body...)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], s)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != s {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return errors.New("netlink: short error message")
				}
				if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
					return unix.Errno(-code)
				}
				return nil
			default:
				if each != nil {
					each(m)
				}
			}
		}
	}
}

// attr appends one rtattr.
func attr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	hdr := make([]byte, unix.SizeofRtAttr)
	binary.NativeEndian.PutUint16(hdr[0:], uint16(l))
	binary.NativeEndian.PutUint16(hdr[2:], typ)
	b = append(b, hdr...)
	b = append(b, data...)
	for len(b)%unix.RTA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func structBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// Index returns the interface index of the named link: one SIOCGIFINDEX
// ioctl, as if_nametoindex(3) does, where the net package would dump every
// link and address (a measurable part of the boot under emulation).
func Index(name string) (int, error) {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, fmt.Errorf("find link %s: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("find link %s: socket: %w", name, err)
	}
	defer unix.Close(fd)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("find link %s: %w", name, err)
	}
	return int(ifr.Uint32()), nil
}

// Link is what rtnetlink says about a network interface.
type Link struct {
	Index int
	Name  string
	Type  uint16 // ARPHRD_*
	Flags uint32 // IFF_*
	MTU   int
	HW    net.HardwareAddr
}

// Carrier says whether the link is up and its lower layer has carrier.
func (l Link) Carrier() bool {
	return l.Flags&unix.IFF_UP != 0 && l.Flags&unix.IFF_LOWER_UP != 0
}

// ParseLink reads an RTM_NEWLINK or RTM_DELLINK message.
func ParseLink(m syscall.NetlinkMessage) (Link, bool) {
	if (m.Header.Type != unix.RTM_NEWLINK && m.Header.Type != unix.RTM_DELLINK) || len(m.Data) < unix.SizeofIfInfomsg {
		return Link{}, false
	}
	ifi := (*unix.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
	l := Link{Index: int(ifi.Index), Type: ifi.Type, Flags: ifi.Flags}
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return Link{}, false
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.IFLA_IFNAME:
			l.Name = unix.ByteSliceToString(a.Value)
		case unix.IFLA_MTU:
			if len(a.Value) == 4 {
				l.MTU = int(binary.NativeEndian.Uint32(a.Value))
			}
		case unix.IFLA_ADDRESS:
			l.HW = append(net.HardwareAddr(nil), a.Value...)
		}
	}
	return l, l.Name != ""
}

// Links lists every link.
func Links() ([]Link, error) {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC}
	var links []Link
	err := request(unix.RTM_GETLINK, unix.NLM_F_DUMP, structBytes(&msg), func(m syscall.NetlinkMessage) {
		if l, ok := ParseLink(m); ok {
			links = append(links, l)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return links, nil
}

// LinkEvent is a link that appeared or changed, or, with Gone, went away.
type LinkEvent struct {
	Link
	Gone bool
}

// Monitor receives rtnetlink's link notifications.
type Monitor struct {
	s   *rawsock.Sock
	buf []byte
}

// WatchLinks subscribes to link notifications. Open it before listing the
// links, so that none appears unseen in between.
func WatchLinks() (*Monitor, error) {
	s, err := rawsock.Open(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE, func(fd int) error {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK})
	})
	if err != nil {
		return nil, fmt.Errorf("watch links: %w", err)
	}
	return &Monitor{s: s, buf: make([]byte, 32<<10)}, nil
}

// Next waits for the next batch of link events. After an overrun (ENOBUFS)
// it returns every link as it is now.
func (m *Monitor) Next() ([]LinkEvent, error) {
	n, _, err := m.s.Recv(m.buf)
	if errors.Is(err, unix.ENOBUFS) {
		links, err := Links()
		var evs []LinkEvent
		for _, l := range links {
			evs = append(evs, LinkEvent{Link: l})
		}
		return evs, err
	}
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(m.buf[:n])
	if err != nil {
		return nil, fmt.Errorf("netlink parse: %w", err)
	}
	var evs []LinkEvent
	for _, msg := range msgs {
		if l, ok := ParseLink(msg); ok {
			evs = append(evs, LinkEvent{Link: l, Gone: msg.Header.Type == unix.RTM_DELLINK})
		}
	}
	return evs, nil
}

// Close stops the monitor and wakes a Next in progress.
func (m *Monitor) Close() error { return m.s.Close() }

// SetUp sets the link with index up.
func SetUp(index int) error {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index), Flags: unix.IFF_UP, Change: unix.IFF_UP}
	if err := request(unix.RTM_NEWLINK, 0, structBytes(&msg), nil); err != nil {
		return fmt.Errorf("set link %d up: %w", index, err)
	}
	return nil
}

// SetMTU sets the link's MTU.
func SetMTU(index, mtu int) error {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index)}
	b := attr(structBytes(&msg), unix.IFLA_MTU, u32(uint32(mtu)))
	if err := request(unix.RTM_NEWLINK, 0, b, nil); err != nil {
		return fmt.Errorf("set link %d mtu %d: %w", index, mtu, err)
	}
	return nil
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// Addr is an address to put on a link.
type Addr struct {
	Prefix netip.Prefix // the address and its prefix length
	// Valid and Preferred are lifetimes after which the kernel removes the
	// address or stops using it for new connections; 0 is forever.
	Valid, Preferred time.Duration
	// Flags are IFA_F_* flags to add with, such as IFA_F_OPTIMISTIC: an
	// IPv6 address usable while duplicate address detection runs.
	Flags uint32
}

func lifetime(d time.Duration) uint32 {
	if d <= 0 || d >= time.Duration(0xffffffff)*time.Second {
		return 0xffffffff
	}
	if d < time.Second {
		return 1
	}
	return uint32(d / time.Second)
}

func addrMsg(index int, p netip.Prefix) []byte {
	a := p.Addr()
	msg := unix.IfAddrmsg{Family: family(a), Prefixlen: uint8(p.Bits()), Index: uint32(index)}
	b := append([]byte{}, structBytes(&msg)...)
	b = attr(b, unix.IFA_LOCAL, a.AsSlice())
	return attr(b, unix.IFA_ADDRESS, a.AsSlice())
}

// ReplaceAddr puts the address on the link, replacing (and so renewing the
// lifetimes of) the same address if present.
func ReplaceAddr(index int, a Addr) error {
	b := addrMsg(index, a.Prefix)
	if ip := a.Prefix.Addr(); ip.Is4() && a.Prefix.Bits() < 31 {
		bcast := ip.As4()
		for i := range bcast {
			bits := a.Prefix.Bits() - 8*i
			switch {
			case bits <= 0:
				bcast[i] = 0xff
			case bits < 8:
				bcast[i] |= 0xff >> bits
			}
		}
		b = attr(b, unix.IFA_BROADCAST, bcast[:])
	}
	if a.Valid > 0 || a.Preferred > 0 {
		ci := unix.IfaCacheinfo{Prefered: lifetime(a.Preferred), Valid: lifetime(a.Valid)}
		if ci.Prefered > ci.Valid {
			ci.Prefered = ci.Valid
		}
		b = attr(b, unix.IFA_CACHEINFO, structBytes(&ci))
	}
	if a.Flags != 0 {
		b = attr(b, unix.IFA_FLAGS, u32(a.Flags))
	}
	if err := request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b, nil); err != nil {
		return fmt.Errorf("add %s to link %d: %w", a.Prefix, index, err)
	}
	return nil
}

// LinkAddr is an address the kernel has on a link.
type LinkAddr struct {
	Prefix netip.Prefix
	Scope  uint8  // RT_SCOPE_*
	Flags  uint32 // IFA_F_*
}

// Usable says whether the address can be used now: duplicate address
// detection is done, or the address is optimistic, and did not fail.
func (a LinkAddr) Usable() bool {
	if a.Flags&unix.IFA_F_DADFAILED != 0 {
		return false
	}
	return a.Flags&unix.IFA_F_TENTATIVE == 0 || a.Flags&unix.IFA_F_OPTIMISTIC != 0
}

// ParseAddr reads an RTM_NEWADDR message.
func ParseAddr(m syscall.NetlinkMessage) (LinkAddr, int, bool) {
	if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
		return LinkAddr{}, 0, false
	}
	ifa := (*unix.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
	a := LinkAddr{Scope: ifa.Scope, Flags: uint32(ifa.Flags)}
	attrs, err := syscall.ParseNetlinkRouteAttr(&m)
	if err != nil {
		return LinkAddr{}, 0, false
	}
	var local, address netip.Addr
	for _, at := range attrs {
		switch at.Attr.Type {
		case unix.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(at.Value)
		case unix.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(at.Value)
		case unix.IFA_FLAGS:
			if len(at.Value) == 4 {
				a.Flags = binary.NativeEndian.Uint32(at.Value)
			}
		}
	}
	if local.IsValid() {
		address = local
	}
	if !address.IsValid() {
		return LinkAddr{}, 0, false
	}
	a.Prefix = netip.PrefixFrom(address, int(ifa.Prefixlen))
	return a, int(ifa.Index), true
}

// Addrs6 lists the IPv6 addresses on the link.
func Addrs6(index int) ([]LinkAddr, error) {
	msg := unix.IfAddrmsg{Family: unix.AF_INET6}
	var as []LinkAddr
	err := request(unix.RTM_GETADDR, unix.NLM_F_DUMP, structBytes(&msg), func(m syscall.NetlinkMessage) {
		if a, i, ok := ParseAddr(m); ok && i == index {
			as = append(as, a)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list addresses of link %d: %w", index, err)
	}
	return as, nil
}

// DelAddr removes the address from the link.
func DelAddr(index int, p netip.Prefix) error {
	if err := request(unix.RTM_DELADDR, 0, addrMsg(index, p), nil); err != nil {
		return fmt.Errorf("remove %s from link %d: %w", p, index, err)
	}
	return nil
}

// Route is a route in the main table.
type Route struct {
	Dst   netip.Prefix // 0.0.0.0/0 or ::/0 for the default route
	Gw    netip.Addr   // invalid: directly on the link
	Src   netip.Addr   // preferred source; invalid: the kernel picks
	Index int
	// Protocol records who made the route (unix.RTPROT_DHCP, RTPROT_BOOT,
	// RTPROT_STATIC).
	Protocol uint8
	Metric   uint32
	// OnLink takes the gateway as reachable on the link even when no
	// prefix of the link covers it.
	OnLink bool
}

func (r Route) msg() []byte {
	fam := family(r.Dst.Addr())
	scope := uint8(unix.RT_SCOPE_UNIVERSE)
	if !r.Gw.IsValid() && fam == unix.AF_INET {
		scope = unix.RT_SCOPE_LINK
	}
	proto := r.Protocol
	if proto == 0 {
		proto = unix.RTPROT_BOOT
	}
	msg := unix.RtMsg{Family: fam, Dst_len: uint8(r.Dst.Bits()), Table: unix.RT_TABLE_MAIN, Protocol: proto, Scope: scope, Type: unix.RTN_UNICAST}
	if r.OnLink {
		msg.Flags = unix.RTNH_F_ONLINK
	}
	b := append([]byte{}, structBytes(&msg)...)
	if r.Dst.Bits() > 0 {
		b = attr(b, unix.RTA_DST, r.Dst.Masked().Addr().AsSlice())
	}
	if r.Gw.IsValid() {
		b = attr(b, unix.RTA_GATEWAY, r.Gw.AsSlice())
	}
	if r.Src.IsValid() {
		b = attr(b, unix.RTA_PREFSRC, r.Src.AsSlice())
	}
	if r.Metric != 0 {
		b = attr(b, unix.RTA_PRIORITY, u32(r.Metric))
	}
	return attr(b, unix.RTA_OIF, u32(uint32(r.Index)))
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Gw.IsValid() {
		s += " via " + r.Gw.String()
	}
	return fmt.Sprintf("%s dev %d", s, r.Index)
}

// ReplaceRoute adds the route, replacing one to the same destination and
// metric.
func ReplaceRoute(r Route) error {
	if !r.Dst.IsValid() {
		return fmt.Errorf("route %v: no destination", r)
	}
	if err := request(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, r.msg(), nil); err != nil {
		return fmt.Errorf("route %v: %w", r, err)
	}
	return nil
}

// DelRoute removes the route.
func DelRoute(r Route) error {
	if !r.Dst.IsValid() {
		return fmt.Errorf("route %v: no destination", r)
	}
	if err := request(unix.RTM_DELROUTE, 0, r.msg(), nil); err != nil {
		return fmt.Errorf("remove route %v: %w", r, err)
	}
	return nil
}
