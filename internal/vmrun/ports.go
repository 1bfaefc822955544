package vmrun

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Port is one published port: QEMU's user network listens on HostIP:HostPort
// and forwards what arrives to GuestPort in the VM, as docker run -p does.
type Port struct {
	HostIP    string `json:"host_ip"`   // "0.0.0.0" for every address
	HostPort  int    `json:"host_port"` // 0 until ReservePorts picks a free one
	GuestPort int    `json:"guest_port"`
	Proto     string `json:"proto"` // "tcp" or "udp"
}

// String is docker port's line: 8080/tcp -> 127.0.0.1:32768.
func (p Port) String() string {
	return fmt.Sprintf("%d/%s -> %s", p.GuestPort, p.Proto, net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort)))
}

// hostfwd is the port as a rule of QEMU's user network:
// hostfwd=tcp:127.0.0.1:8080-:80.
func (p Port) hostfwd() string {
	return fmt.Sprintf("hostfwd=%s:%s:%d-:%d", p.Proto, p.HostIP, p.HostPort, p.GuestPort)
}

// allAddresses is where a port without an address listens, as docker's do.
const allAddresses = "0.0.0.0"

// publishAllAddress is where -P listens: the free ports it picks are for
// the person at this machine, so they stay on the loopback address.
const publishAllAddress = "127.0.0.1"

// ParsePublish reads one -p value, docker's forms:
//
//	GUEST                 a free host port on every address
//	HOST:GUEST            HOST on every address
//	IP:HOST:GUEST         HOST on IP only
//	IP::GUEST             a free host port on IP
//
// each with an optional /tcp (the default) or /udp, and HOST and GUEST as
// single ports or ranges of one length (8000-8009:80-89).
func ParsePublish(spec string) ([]Port, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("-p %q: %s (want [IP:][HOST:]GUEST[/tcp|udp])", spec, fmt.Sprintf(format, a...))
	}
	rest, proto, found := strings.Cut(spec, "/")
	if !found {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return nil, bad("protocol %q: want tcp or udp", proto)
	}
	ip, host, guest := allAddresses, "", rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, guest = rest[:i], rest[i+1:]
		if j := strings.LastIndexByte(host, ':'); j >= 0 {
			ip, host = host[:j], host[j+1:]
			if strings.HasPrefix(ip, "[") && strings.HasSuffix(ip, "]") {
				ip = ip[1 : len(ip)-1]
			}
			addr := net.ParseIP(ip)
			if addr == nil {
				return nil, bad("host address %q: want an IP address", ip)
			}
			if addr.To4() == nil {
				return nil, bad("host address %q: QEMU's user network forwards IPv4 addresses only", ip)
			}
			ip = addr.String()
		}
	}
	guestLo, guestHi, err := parsePortRange(guest)
	if err != nil {
		return nil, bad("guest port: %v", err)
	}
	hostLo, hostHi := 0, 0
	if host != "" {
		if hostLo, hostHi, err = parsePortRange(host); err != nil {
			return nil, bad("host port: %v", err)
		}
		if hostHi-hostLo != guestHi-guestLo {
			return nil, bad("host ports %s and guest ports %s: want ranges of one length", host, guest)
		}
	}
	var ports []Port
	for i := 0; i <= guestHi-guestLo; i++ {
		p := Port{HostIP: ip, GuestPort: guestLo + i, Proto: proto}
		if hostLo != 0 {
			p.HostPort = hostLo + i
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// parsePortRange reads PORT or LO-HI.
func parsePortRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = parsePortNumber(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = parsePortNumber(b); err != nil {
			return 0, 0, err
		}
		if hi < lo {
			return 0, 0, fmt.Errorf("range %q: want LOW-HIGH", s)
		}
	}
	return lo, hi, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s[0] == '+' {
		return 0, fmt.Errorf("%q: want a number from 1 to 65535", s)
	}
	return n, nil
}

// ExposedPorts are the ports -P publishes: each of the image's
// ExposedPorts ("8080/tcp", "53/udp", "80") on a free loopback port, in
// order.
func ExposedPorts(exposed map[string]struct{}) ([]Port, error) {
	keys := make([]string, 0, len(exposed))
	for k := range exposed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ports []Port
	for _, k := range keys {
		guest, proto, found := strings.Cut(k, "/")
		if !found {
			proto = "tcp"
		}
		lo, hi, err := parsePortRange(guest)
		if err != nil || (proto != "tcp" && proto != "udp") {
			return nil, fmt.Errorf("the image's ExposedPorts %q: want PORT[/tcp|udp]", k)
		}
		for g := lo; g <= hi; g++ {
			ports = append(ports, Port{HostIP: publishAllAddress, GuestPort: g, Proto: proto})
		}
	}
	return ports, nil
}

// ReservePorts checks that every host port is free by binding it, as QEMU
// will, and gives each port without a host port a free one. The bindings
// are held until all are made, so two rules for one host port fail too;
// QEMU binds the ports again once they are released.
func ReservePorts(ports []Port) ([]Port, error) {
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	out := make([]Port, len(ports))
	for i, p := range ports {
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
		var c io.Closer
		var local net.Addr
		var err error
		if p.Proto == "udp" {
			var pc net.PacketConn
			if pc, err = net.ListenPacket("udp4", addr); err == nil {
				c, local = pc, pc.LocalAddr()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp4", addr); err == nil {
				c, local = l, l.Addr()
			}
		}
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("publish %d/%s: host port %s/%s is already in use", p.GuestPort, p.Proto, addr, p.Proto)
			}
			return nil, fmt.Errorf("publish %d/%s: host port %s/%s: %w", p.GuestPort, p.Proto, addr, p.Proto, err)
		}
		held = append(held, c)
		p.HostPort = portOf(local)
		out[i] = p
	}
	return out, nil
}

func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	return 0
}

// netOptions is the user network's options for ports: one hostfwd rule
// each.
func netOptions(ports []Port) string {
	rules := make([]string, len(ports))
	for i, p := range ports {
		rules[i] = p.hostfwd()
	}
	return strings.Join(rules, ",")
}
