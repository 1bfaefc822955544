package rescuecmd

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/rtnl"
)

const ipUsage = `usage: ip addr|link|route [show]
       ip link set DEV up
       ip addr add ADDR/LEN dev DEV
       ip route add PREFIX|default [via GW] dev DEV`

// IP shows the links, their addresses and the routes, and makes the few
// changes that bring a link up by hand. It returns the exit status.
func IP(args []string, stdout, stderr io.Writer) int {
	if err := ip(args, stdout); err != nil {
		fmt.Fprintf(stderr, "ip: %v\n", err)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(stderr, ipUsage)
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("bad arguments")

func ip(args []string, w io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	obj, rest := args[0], args[1:]
	show := len(rest) == 0 || rest[0] == "show" || rest[0] == "list"
	switch {
	case match(obj, "address") && show:
		return showLinks(w, true)
	case match(obj, "link") && show:
		return showLinks(w, false)
	case match(obj, "route") && show:
		return showRoutes(w)
	case match(obj, "link") && len(rest) == 3 && rest[0] == "set" && rest[2] == "up":
		idx, err := rtnl.Index(rest[1])
		if err != nil {
			return err
		}
		return rtnl.SetUp(idx)
	case match(obj, "address") && len(rest) == 4 && rest[0] == "add" && rest[2] == "dev":
		p, err := netip.ParsePrefix(rest[1])
		if err != nil {
			return fmt.Errorf("address %q: %w", rest[1], err)
		}
		idx, err := rtnl.Index(rest[3])
		if err != nil {
			return err
		}
		return rtnl.ReplaceAddr(idx, rtnl.Addr{Prefix: p})
	case match(obj, "route") && len(rest) >= 4 && rest[0] == "add":
		r, dev, err := parseRoute(rest[1:])
		if err != nil {
			return err
		}
		if r.Index, err = rtnl.Index(dev); err != nil {
			return err
		}
		r.Protocol = unix.RTPROT_STATIC
		return rtnl.ReplaceRoute(r)
	}
	return fmt.Errorf("%w: %s", errUsage, strings.Join(args, " "))
}

// match says whether word abbreviates name, as ip's objects may be
// abbreviated ("a", "addr", "r").
func match(word, name string) bool {
	return word != "" && strings.HasPrefix(name, word)
}

// parseRoute reads `PREFIX|default [via GW] dev DEV`.
func parseRoute(args []string) (rtnl.Route, string, error) {
	var r rtnl.Route
	var dev string
	dst := args[0]
	for i := 1; i+1 < len(args); i += 2 {
		switch args[i] {
		case "via":
			gw, err := netip.ParseAddr(args[i+1])
			if err != nil {
				return r, "", fmt.Errorf("gateway %q: %w", args[i+1], err)
			}
			r.Gw = gw
		case "dev":
			dev = args[i+1]
		default:
			return r, "", fmt.Errorf("%w: route option %q", errUsage, args[i])
		}
	}
	if dev == "" || len(args)%2 == 0 {
		return r, "", fmt.Errorf("%w: route %s", errUsage, strings.Join(args, " "))
	}
	if dst == "default" {
		dst = "0.0.0.0/0"
		if r.Gw.Is6() {
			dst = "::/0"
		}
	}
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		return r, "", fmt.Errorf("route destination %q: %w", dst, err)
	}
	r.Dst = p.Masked()
	return r, dev, nil
}

var linkFlags = []struct {
	bit  uint32
	name string
}{
	{unix.IFF_LOOPBACK, "LOOPBACK"}, {unix.IFF_BROADCAST, "BROADCAST"}, {unix.IFF_POINTOPOINT, "POINTOPOINT"},
	{unix.IFF_MULTICAST, "MULTICAST"}, {unix.IFF_UP, "UP"}, {unix.IFF_LOWER_UP, "LOWER_UP"},
}

// linkLine is the first line ip prints for a link.
func linkLine(l rtnl.Link) string {
	var names []string
	for _, f := range linkFlags {
		if l.Flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	state := "DOWN"
	if l.Carrier() {
		state = "UP"
	}
	return fmt.Sprintf("%d: %s: <%s> mtu %d state %s", l.Index, l.Name, strings.Join(names, ","), l.MTU, state)
}

func showLinks(w io.Writer, addrs bool) error {
	links, err := rtnl.Links()
	if err != nil {
		return err
	}
	for _, l := range links {
		fmt.Fprintln(w, linkLine(l))
		if len(l.HW) > 0 {
			fmt.Fprintf(w, "    link/%s %s\n", map[bool]string{true: "loopback", false: "ether"}[l.Flags&unix.IFF_LOOPBACK != 0], l.HW)
		}
		if !addrs {
			continue
		}
		as, err := (&net.Interface{Index: l.Index}).Addrs()
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", l.Name, err)
		}
		for _, a := range as {
			fam := "inet"
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil {
				fam = "inet6"
			}
			fmt.Fprintf(w, "    %s %s\n", fam, a)
		}
	}
	return nil
}

func showRoutes(w io.Writer) error {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	defer f.Close()
	routes, err := parseProcRoute(f)
	if err != nil {
		return err
	}
	for _, r := range routes {
		fmt.Fprintln(w, r)
	}
	if f6, err := os.Open("/proc/net/ipv6_route"); err == nil {
		defer f6.Close()
		routes, err := parseProcRoute6(f6)
		if err != nil {
			return err
		}
		for _, r := range routes {
			fmt.Fprintln(w, r)
		}
	}
	return nil
}

// routeLine is one route as ip prints it.
func routeLine(dst netip.Prefix, gw netip.Addr, dev string, metric int) string {
	s := dst.String()
	if dst.Bits() == 0 {
		s = "default"
	}
	if gw.IsValid() && !gw.IsUnspecified() {
		s += " via " + gw.String()
	}
	s += " dev " + dev
	if metric != 0 {
		s += " metric " + strconv.Itoa(metric)
	}
	return s
}

// parseProcRoute reads /proc/net/route: addresses in hex, in the
// kernel's (little-endian) byte order.
func parseProcRoute(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 8 {
			continue
		}
		dst, err1 := hex4(f[1])
		gw, err2 := hex4(f[2])
		mask, err3 := hex4(f[7])
		metric, err4 := strconv.Atoi(f[6])
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, fmt.Errorf("/proc/net/route line %q: %w", sc.Text(), err)
		}
		bits, _ := net.IPMask(mask.AsSlice()).Size()
		out = append(out, routeLine(netip.PrefixFrom(dst, bits), gw, f[0], metric))
	}
	return out, sc.Err()
}

func hex4(s string) (netip.Addr, error) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return netip.Addr{}, err
	}
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(v))
	return netip.AddrFrom4(b), nil
}

// rtfLocal marks a route of the kernel's local table in ipv6_route.
const rtfLocal = 0x80000000

// parseProcRoute6 reads /proc/net/ipv6_route, leaving out the local and
// multicast routes, which ip shows only when asked for those tables.
func parseProcRoute6(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[9] == "lo" {
			continue
		}
		dst, err1 := hex16(f[0])
		bits, err2 := strconv.ParseUint(f[1], 16, 8)
		gw, err3 := hex16(f[4])
		metric, err4 := strconv.ParseUint(f[5], 16, 32)
		flags, err5 := strconv.ParseUint(f[8], 16, 32)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			return nil, fmt.Errorf("/proc/net/ipv6_route line %q: %w", sc.Text(), err)
		}
		if dst.IsMulticast() || flags&rtfLocal != 0 {
			continue
		}
		out = append(out, routeLine(netip.PrefixFrom(dst, int(bits)), gw, f[9], int(metric)))
	}
	return out, sc.Err()
}

func hex16(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return netip.Addr{}, fmt.Errorf("IPv6 address %q: %v", s, err)
	}
	return netip.AddrFrom16([16]byte(b)), nil
}
