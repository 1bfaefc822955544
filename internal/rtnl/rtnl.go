// Package rtnl is the little of rtnetlink that ginit needs: set a link up,
// put an address on it, add a route. A full netlink library costs the
// image more than all of ginit's own code, so these few messages are
// written out here over golang.org/x/sys/unix.
package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

var seq atomic.Uint32

// request sends one rtnetlink message and waits for its acknowledgement.
func request(typ uint16, flags uint16, body []byte) error {
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
	buf := make([]byte, 8192)
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
			if m.Header.Seq != s || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("netlink: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				return unix.Errno(-code)
			}
			return nil
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

func structBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// Index returns the interface index of the named link.
func Index(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("find link %s: %w", name, err)
	}
	return ifi.Index, nil
}

// SetUp sets the link with index up.
func SetUp(index int) error {
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(index), Flags: unix.IFF_UP, Change: unix.IFF_UP}
	if err := request(unix.RTM_NEWLINK, 0, structBytes(&msg)); err != nil {
		return fmt.Errorf("set link %d up: %w", index, err)
	}
	return nil
}

func family(ip net.IP) (uint8, net.IP) {
	if v4 := ip.To4(); v4 != nil {
		return unix.AF_INET, v4
	}
	return unix.AF_INET6, ip.To16()
}

// ReplaceAddr puts addr on the link, replacing the same address if present.
func ReplaceAddr(index int, addr net.IPNet) error {
	fam, ip := family(addr.IP)
	ones, _ := addr.Mask.Size()
	msg := unix.IfAddrmsg{Family: fam, Prefixlen: uint8(ones), Index: uint32(index)}
	b := append([]byte{}, structBytes(&msg)...)
	b = attr(b, unix.IFA_LOCAL, ip)
	b = attr(b, unix.IFA_ADDRESS, ip)
	if fam == unix.AF_INET && ones < 31 {
		bcast := make(net.IP, 4)
		mask := net.IP(addr.Mask).To4()
		for i := range bcast {
			bcast[i] = ip[i] | ^mask[i]
		}
		b = attr(b, unix.IFA_BROADCAST, bcast)
	}
	if err := request(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b); err != nil {
		return fmt.Errorf("add %s to link %d: %w", addr.String(), index, err)
	}
	return nil
}

// Route is a route to add: Dst nil means the default route.
type Route struct {
	Dst   *net.IPNet
	Gw    net.IP
	Index int
	// Protocol records who made the route (unix.RTPROT_DHCP, RTPROT_BOOT).
	Protocol uint8
}

// ReplaceRoute adds the route, replacing one to the same destination.
func ReplaceRoute(r Route) error {
	fam := uint8(unix.AF_INET)
	if r.Gw != nil && r.Gw.To4() == nil {
		fam = unix.AF_INET6
	}
	var dstLen uint8
	var dst net.IP
	if r.Dst != nil {
		ones, _ := r.Dst.Mask.Size()
		dstLen = uint8(ones)
		fam, dst = family(r.Dst.IP)
	}
	scope := uint8(unix.RT_SCOPE_UNIVERSE)
	if r.Gw == nil {
		scope = unix.RT_SCOPE_LINK
	}
	proto := r.Protocol
	if proto == 0 {
		proto = unix.RTPROT_BOOT
	}
	msg := unix.RtMsg{Family: fam, Dst_len: dstLen, Table: unix.RT_TABLE_MAIN, Protocol: proto, Scope: scope, Type: unix.RTN_UNICAST}
	b := append([]byte{}, structBytes(&msg)...)
	if dst != nil {
		b = attr(b, unix.RTA_DST, dst)
	}
	if r.Gw != nil {
		_, gw := family(r.Gw)
		b = attr(b, unix.RTA_GATEWAY, gw)
	}
	oif := make([]byte, 4)
	binary.NativeEndian.PutUint32(oif, uint32(r.Index))
	b = attr(b, unix.RTA_OIF, oif)
	if err := request(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b); err != nil {
		return fmt.Errorf("route %v via %v on link %d: %w", r.Dst, r.Gw, r.Index, err)
	}
	return nil
}
