// Package ipconfig parses the kernel's ip= parameter (nfsroot syntax, with
// dracut's IPv6 additions) into what the network code does on each link.
// It is a pure parser: no syscalls, so it tests and fuzzes anywhere.
//
//	ip=off|none                    no network configuration
//	ip=dhcp|on|any|bootp|both      DHCPv4 on every wired link
//	ip=dhcp6                       DHCPv6 (and router advertisements)
//	ip=auto6|either6               IPv6 as router advertisements say
//	ip=auto                        DHCPv4 and IPv6 (the default without ip=)
//	ip=DEV:AUTOCONF                one of the above on link DEV (dracut)
//	ip=CLIENT:SERVER:GW:NETMASK:HOSTNAME:DEV:AUTOCONF:DNS0:DNS1:NTP0
//
// In the long form every field may be empty. CLIENT with AUTOCONF empty,
// off or none is a static address; IPv6 addresses go in brackets
// ([2001:db8::2]) and NETMASK may be a prefix length. SERVER and NTP0 are
// read and ignored; a number in place of DNS0 is an MTU (dracut). Several
// ip= configure several links.
package ipconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Method is a set of dynamic configuration methods.
type Method uint8

// The methods; zero is static configuration (or none).
const (
	DHCP4 Method = 1 << iota // DHCPv4
	RA                       // IPv6 as router advertisements say: SLAAC, DHCPv6 if they ask
	DHCP6                    // DHCPv6 whatever router advertisements say
)

// Auto is what a link gets without ip=.
const Auto = DHCP4 | RA

// Entry is one ip= value.
type Entry struct {
	Device   string       // link name; empty: every link (static: the first)
	Method   Method       // dynamic methods; 0 with Addr set: static
	Addr     netip.Prefix // static address; invalid when none
	Gateway  netip.Addr   // static default route
	Hostname string
	DNS      []netip.Addr
	MTU      int
	Off      bool // off or none without an address: leave the link alone
}

// Static says whether the entry gives an address of its own.
func (e Entry) Static() bool { return e.Addr.IsValid() }

var autoconf = map[string]Method{
	"off": 0, "none": 0, "static": 0,
	"on": Auto, "any": Auto, "auto": Auto,
	"dhcp": DHCP4, "bootp": DHCP4, "both": DHCP4, "rarp": DHCP4,
	"dhcp6": DHCP6 | RA, "auto6": RA, "either6": RA,
}

// Parse reads one ip= value.
func Parse(s string) (Entry, error) {
	if m, ok := autoconf[s]; ok {
		return Entry{Method: m, Off: m == 0}, nil
	}
	f, err := split(s)
	if err != nil {
		return Entry{}, err
	}
	// dracut's DEV:AUTOCONF[:MTU[:MAC]].
	if len(f) >= 2 && len(f) <= 4 && f[0] != "" && !strings.HasPrefix(f[0], "[") {
		if _, err := netip.ParseAddr(f[0]); err != nil {
			if m, ok := autoconf[f[1]]; ok {
				if err := checkDevice(f[0]); err != nil {
					return Entry{}, err
				}
				e := Entry{Device: f[0], Method: m, Off: m == 0}
				if len(f) > 2 && f[2] != "" {
					if e.MTU, err = mtu(f[2]); err != nil {
						return Entry{}, err
					}
				}
				return e, nil
			}
		}
	}
	for len(f) < 10 {
		f = append(f, "")
	}
	if len(f) > 10 {
		return Entry{}, fmt.Errorf("%d fields; want at most 10", len(f))
	}
	var e Entry
	m, ok := autoconf[f[6]]
	if !ok && f[6] != "" {
		return Entry{}, fmt.Errorf("autoconf %q: want off, none, on, any, dhcp, bootp, rarp, both, dhcp6, auto6 or auto", f[6])
	}
	if f[6] == "" && f[0] == "" {
		m = Auto // the kernel's default: autoconfiguration
	}
	e.Method = m
	if f[0] != "" {
		client, err := addr("client", f[0])
		if err != nil {
			return Entry{}, err
		}
		if m != 0 {
			return Entry{}, fmt.Errorf("client address %s with autoconf %s: give one or the other", f[0], f[6])
		}
		bits := 64
		if client.Is4() {
			bits = classBits(client)
		}
		if f[3] != "" {
			if bits, err = maskBits(f[3], client.Is4()); err != nil {
				return Entry{}, err
			}
		}
		e.Addr = netip.PrefixFrom(client, bits)
	} else if f[3] != "" {
		if _, err := maskBits(f[3], true); err != nil {
			if _, err6 := maskBits(f[3], false); err6 != nil {
				return Entry{}, err
			}
		}
	}
	if f[1] != "" {
		if _, err := addr("server", f[1]); err != nil {
			return Entry{}, err
		}
	}
	if f[2] != "" {
		if e.Gateway, err = addr("gateway", f[2]); err != nil {
			return Entry{}, err
		}
		if e.Addr.IsValid() && e.Gateway.Is4() != e.Addr.Addr().Is4() {
			return Entry{}, fmt.Errorf("gateway %s and client %s are of different families", e.Gateway, e.Addr.Addr())
		}
	}
	if f[4] != "" {
		if err := CheckHostname(f[4]); err != nil {
			return Entry{}, err
		}
		e.Hostname = f[4]
	}
	if f[5] != "" {
		if err := checkDevice(f[5]); err != nil {
			return Entry{}, err
		}
		e.Device = f[5]
	}
	dns := f[7:9]
	if f[7] != "" && isDigits(f[7]) {
		if e.MTU, err = mtu(f[7]); err != nil {
			return Entry{}, err
		}
		dns = nil // dracut: MTU and MAC in their place
	}
	for _, d := range dns {
		if d == "" {
			continue
		}
		a, err := addr("dns", d)
		if err != nil {
			return Entry{}, err
		}
		e.DNS = append(e.DNS, a)
	}
	if f[9] != "" && dns != nil {
		if _, err := addr("ntp", f[9]); err != nil {
			return Entry{}, err
		}
	}
	e.Off = e.Method == 0 && !e.Addr.IsValid()
	return e, nil
}

// split cuts s at colons outside brackets.
func split(s string) ([]string, error) {
	var f []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			if depth > 0 {
				return nil, errors.New("nested [")
			}
			depth++
		case ']':
			if depth == 0 {
				return nil, errors.New("] without [")
			}
			depth--
		case ':':
			if depth == 0 {
				f = append(f, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, errors.New("[ without ]")
	}
	return append(f, s[start:]), nil
}

func addr(field, s string) (netip.Addr, error) {
	inner := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || a.Zone() != "" || a.Is4In6() || (inner == s && a.Is6()) || (inner != s && a.Is4()) {
		return netip.Addr{}, fmt.Errorf("%s %q: want an IPv4 address or an IPv6 address in brackets", field, s)
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%s %q: not a unicast address", field, s)
	}
	return a, nil
}

// classBits is the kernel's default netmask for an address without one.
func classBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}

func maskBits(s string, v4 bool) (int, error) {
	max := 128
	if v4 {
		max = 32
	}
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err != nil || n > max {
			return 0, fmt.Errorf("netmask %q: want a prefix length up to %d", s, max)
		}
		return n, nil
	}
	m, err := netip.ParseAddr(s)
	if err != nil || !m.Is4() || !v4 {
		return 0, fmt.Errorf("netmask %q: want a dotted mask or a prefix length", s)
	}
	v := m.As4()
	bits := uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	n := 0
	for bits&(1<<31) != 0 {
		n++
		bits <<= 1
	}
	if bits != 0 {
		return 0, fmt.Errorf("netmask %q: not contiguous", s)
	}
	return n, nil
}

func mtu(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || !isDigits(s) || n < 68 || n > 65535 {
		return 0, fmt.Errorf("mtu %q: want 68 to 65535", s)
	}
	return n, nil
}

func isDigits(s string) bool {
	if s == "" || len(s) > 6 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CheckHostname accepts what sethostname(2) and a resolver accept: 1 to 64
// letters, digits, hyphens and dots, no empty label.
func CheckHostname(h string) error {
	if h == "" || len(h) > 64 {
		return fmt.Errorf("hostname %q: want 1 to 64 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("hostname %q: empty label or label starting or ending with -", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("hostname %q: want letters, digits, - and .", h)
			}
		}
	}
	return nil
}

func checkDevice(d string) error {
	if len(d) > 15 || d == "." || d == ".." || strings.ContainsAny(d, "/ \t\n[]:\x00") {
		return fmt.Errorf("device %q: not a link name", d)
	}
	return nil
}

// String renders e in the long kernel syntax, which Parse reads back.
func (e Entry) String() string {
	f := make([]string, 9)
	if e.Addr.IsValid() {
		f[0] = bracket(e.Addr.Addr())
		f[3] = strconv.Itoa(e.Addr.Bits())
	}
	if e.Gateway.IsValid() {
		f[2] = bracket(e.Gateway)
	}
	f[4], f[5] = e.Hostname, e.Device
	switch e.Method {
	case 0:
		f[6] = "none"
	case DHCP4:
		f[6] = "dhcp"
	case RA:
		f[6] = "auto6"
	case DHCP6 | RA:
		f[6] = "dhcp6"
	default:
		f[6] = "auto"
	}
	if e.MTU != 0 {
		f[7] = strconv.Itoa(e.MTU)
	} else {
		for i, d := range e.DNS {
			if i < 2 {
				f[7+i] = bracket(d)
			}
		}
	}
	return strings.TrimRight(strings.Join(f, ":"), ":")
}

func bracket(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// Plan is every ip= of the command line, resolved per link.
type Plan struct {
	entries []Entry
}

// NewPlan parses the ip= values in order; a bad value is reported and
// skipped, the others stand.
func NewPlan(values []string) (Plan, []error) {
	var p Plan
	var errs []error
	for _, v := range values {
		e, err := Parse(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("ip=%s: %w", v, err))
			continue
		}
		p.entries = append(p.entries, e)
	}
	return p, errs
}

// Off says the plan configures no link at all.
func (p Plan) Off() bool {
	if len(p.entries) == 0 {
		return false
	}
	for _, e := range p.entries {
		if !e.Off {
			return false
		}
	}
	return true
}

// Entries returns the parsed entries, in command-line order.
func (p Plan) Entries() []Entry { return p.entries }

// For returns what to do on link name; first says whether it is the first
// wired link, which a static entry without a device goes to. ok is false
// when the plan leaves the link alone.
func (p Plan) For(name string, first bool) (e Entry, ok bool) {
	if len(p.entries) == 0 {
		return Entry{Method: Auto}, true
	}
	for _, e := range p.entries {
		if e.Device == name {
			return e, !e.Off
		}
	}
	for _, e := range p.entries {
		if e.Device != "" || (e.Static() && !first) {
			continue
		}
		return e, !e.Off
	}
	return Entry{}, false
}
