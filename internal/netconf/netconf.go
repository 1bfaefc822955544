// Package netconf brings the machine's network up: loopback always, and a
// DHCPv4 lease on every wired link, applied with netlink (address, default
// route from the Router option, DNS into a resolv.conf under /run).
package netconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/rootpath"
	"github.com/ginit-dev/ginit/internal/rtnl"
)

// ResolvConf is where ginit writes the DNS settings of the leases; it is
// bind-mounted over the workload's /etc/resolv.conf.
const ResolvConf = "/run/ginit/resolv.conf"

// LoopbackUp brings lo up (the kernel gives it 127.0.0.1 and ::1).
func LoopbackUp() error {
	lo, err := rtnl.Index("lo")
	if err != nil {
		return err
	}
	return rtnl.SetUp(lo)
}

// WiredLinks names the links that are Ethernet devices backed by hardware:
// they have a device in sysfs and no wireless directory.
func WiredLinks(sysClassNet string) ([]string, error) {
	entries, err := os.ReadDir(sysClassNet)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var names []string
	for _, e := range entries {
		dir := filepath.Join(sysClassNet, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "device")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "wireless")); err == nil {
			continue
		}
		if t, err := os.ReadFile(filepath.Join(dir, "type")); err != nil || strings.TrimSpace(string(t)) != "1" {
			continue // not ARPHRD_ETHER
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

// Lease4 is a DHCPv4 lease as ginit applies it.
type Lease4 struct {
	Link    string
	Addr    net.IPNet
	Router  net.IP
	DNS     []net.IP
	Search  []string
	Server  net.IP
	Elapsed time.Duration // from link up to lease applied
}

func (l Lease4) String() string {
	return fmt.Sprintf("%s: %s via %v dns %v from %v in %v", l.Link, l.Addr.String(), l.Router, l.DNS, l.Server, l.Elapsed.Round(time.Millisecond))
}

// FromACK reads the lease out of a DHCPACK.
func FromACK(link string, ack *dhcpv4.DHCPv4) (Lease4, error) {
	if ack == nil || ack.YourIPAddr == nil || ack.YourIPAddr.IsUnspecified() {
		return Lease4{}, errors.New("ACK carries no address")
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	l := Lease4{
		Link:   link,
		Addr:   net.IPNet{IP: ack.YourIPAddr.To4(), Mask: mask},
		DNS:    ack.DNS(),
		Server: ack.ServerIdentifier(),
	}
	if r := ack.Router(); len(r) > 0 {
		l.Router = r[0]
	}
	if d := ack.DomainSearch(); d != nil {
		l.Search = d.Labels
	} else if n := ack.DomainName(); n != "" {
		l.Search = []string{n}
	}
	return l, nil
}

// Apply puts the lease's address and default route on its link.
func (l Lease4) Apply() error {
	index, err := rtnl.Index(l.Link)
	if err != nil {
		return err
	}
	ip, _ := netip.AddrFromSlice(l.Addr.IP.To4())
	ones, _ := l.Addr.Mask.Size()
	if err := rtnl.ReplaceAddr(index, rtnl.Addr{Prefix: netip.PrefixFrom(ip, ones)}); err != nil {
		return fmt.Errorf("%s: %w", l.Link, err)
	}
	if gw, ok := netip.AddrFromSlice(l.Router.To4()); ok {
		if err := rtnl.ReplaceRoute(rtnl.Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gw: gw, Index: index, Protocol: unix.RTPROT_DHCP}); err != nil {
			return fmt.Errorf("%s: default %w", l.Link, err)
		}
	}
	return nil
}

// ResolvConfText renders resolv.conf for the leases, in link order.
func ResolvConfText(leases []Lease4) string {
	var b strings.Builder
	seenNS := map[string]bool{}
	var search []string
	seenSearch := map[string]bool{}
	for _, l := range leases {
		for _, s := range l.Search {
			if !seenSearch[s] {
				seenSearch[s] = true
				search = append(search, s)
			}
		}
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, l := range leases {
		for _, ns := range l.DNS {
			if !seenNS[ns.String()] {
				seenNS[ns.String()] = true
				fmt.Fprintf(&b, "nameserver %s\n", ns)
			}
		}
	}
	return b.String()
}

// DHCP4 sets link up and gets a lease on it, retrying until ctx ends.
func DHCP4(ctx context.Context, name string) (Lease4, error) {
	start := time.Now()
	index, err := rtnl.Index(name)
	if err != nil {
		return Lease4{}, err
	}
	if err := rtnl.SetUp(index); err != nil {
		return Lease4{}, fmt.Errorf("%s: %w", name, err)
	}
	client, err := nclient4.New(name, nclient4.WithTimeout(time.Second), nclient4.WithRetry(1<<20))
	if err != nil {
		return Lease4{}, fmt.Errorf("dhcp on %s: %w", name, err)
	}
	defer client.Close()
	hostname, _ := os.Hostname()
	mods := []dhcpv4.Modifier{
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionDomainName, dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionHostName),
	}
	if hostname != "" && hostname != "(none)" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(hostname)))
	}
	lease, err := client.Request(ctx, mods...)
	if err != nil {
		return Lease4{}, fmt.Errorf("dhcp on %s: %w", name, err)
	}
	l, err := FromACK(name, lease.ACK)
	if err != nil {
		return Lease4{}, fmt.Errorf("dhcp on %s: %w", name, err)
	}
	if err := l.Apply(); err != nil {
		return Lease4{}, err
	}
	l.Elapsed = time.Since(start)
	return l, nil
}

// Network runs DHCP on links in the background and records the leases.
type Network struct {
	mu     sync.Mutex
	leases []Lease4
	first  chan struct{}
	once   sync.Once
	done   chan struct{}
}

// Start runs DHCPv4 on every link concurrently until ctx ends; onLease is
// called for each lease applied, onErr for each link that failed.
func Start(ctx context.Context, links []string, onLease func(Lease4), onErr func(error)) *Network {
	n := &Network{first: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for _, name := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					onErr(fmt.Errorf("dhcp on %s: panic: %v", name, r))
				}
			}()
			l, err := DHCP4(ctx, name)
			if err != nil {
				onErr(err)
				return
			}
			n.mu.Lock()
			n.leases = append(n.leases, l)
			sort.Slice(n.leases, func(i, j int) bool { return n.leases[i].Link < n.leases[j].Link })
			n.mu.Unlock()
			if err := n.writeResolvConf(); err != nil {
				onErr(err)
			}
			onLease(l)
			n.once.Do(func() { close(n.first) })
		}()
	}
	go func() { wg.Wait(); close(n.done) }()
	return n
}

func (n *Network) writeResolvConf() error {
	n.mu.Lock()
	text := ResolvConfText(n.leases)
	n.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(ResolvConf), 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", filepath.Dir(ResolvConf), err)
	}
	// Written in place, not renamed: the workload sees it through a bind
	// mount of this very file.
	if err := os.WriteFile(ResolvConf, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", ResolvConf, err)
	}
	return nil
}

// WaitFirst waits for the first lease, for every link to give up, or for
// timeout, whichever comes first, and says whether a lease came.
func (n *Network) WaitFirst(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-n.first:
		return true
	case <-n.done:
		select {
		case <-n.first:
			return true
		default:
			return false
		}
	case <-t.C:
		return false
	}
}

// Logger is where the network code reports; ginit's klog.Logger is one.
type Logger interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	Debugf(format string, args ...any)
}

// Params are the kernel parameters the network reads.
type Params struct {
	IP []string // ip=, each as given
}

// Up brings lo up and, unless ip= turns the network off, starts DHCP on
// every wired link in the background. It returns nil when there is nothing
// to wait for. The workload's resolv.conf exists from here on, lease or not.
func Up(ctx context.Context, p Params, log Logger) *Network {
	if err := LoopbackUp(); err != nil {
		log.Warnf("%v", err)
	}
	if err := os.MkdirAll(filepath.Dir(ResolvConf), 0o755); err == nil {
		_ = os.WriteFile(ResolvConf, nil, 0o644)
	}
	for _, ip := range p.IP {
		if ip == "off" || ip == "none" {
			log.Debugf("ip=%s: no network", ip)
			return nil
		}
	}
	links, err := WiredLinks("/sys/class/net")
	if err != nil {
		log.Warnf("%v", err)
		return nil
	}
	if len(links) == 0 {
		log.Debugf("no wired links")
		return nil
	}
	return Start(ctx, links,
		func(l Lease4) { log.Infof("dhcp %v", l) },
		func(err error) { log.Warnf("%v", err) })
}

// IntoRoot gives the workload's root the machine's DNS settings: ginit's
// resolv.conf is bind-mounted over the root's /etc/resolv.conf, so the disk
// is not changed and renewals show through.
func IntoRoot(root string, log Logger) {
	resolv, err := rootpath.Resolve(root, "/etc/resolv.conf")
	if err != nil {
		log.Debugf("no /etc/resolv.conf in the root: %v", err)
		return
	}
	if fi, err := os.Stat(resolv); err == nil && fi.Mode().IsRegular() {
		if err := unix.Mount(ResolvConf, resolv, "", unix.MS_BIND, ""); err != nil {
			log.Warnf("bind %s on %s: %v", ResolvConf, resolv, err)
		}
	}
}
