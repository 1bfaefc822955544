// Package netconf brings the machine's network up and keeps it up: lo
// always; on every wired link, also links that appear later, what ip= asks
// (by default DHCPv4 and IPv6 as router advertisements say: SLAAC by the
// kernel, DHCPv6 when they ask for it), or a static configuration. Leases
// are applied completely (address, routes with option 121 over the Router
// option, MTU, DNS, search domains, hostname), renewed, rebound and
// released. The workload gets /etc/resolv.conf, /etc/hosts and
// /etc/hostname as bind mounts of files kept under /run/ginit, so renewals
// show through and the disk is not changed.
//
// Nothing here blocks the boot: Up returns at once, and WaitFirst bounds
// the wait for the first lease.
package netconf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/dhcp4"
	"github.com/ginit-dev/ginit/internal/dhcp6"
	"github.com/ginit-dev/ginit/internal/ipconfig"
	"github.com/ginit-dev/ginit/internal/rtnl"
)

// Dir holds the files generated for the workload.
const Dir = "/run/ginit"

// ResolvConf is the generated resolv.conf, bind-mounted over the workload's.
const ResolvConf = Dir + "/resolv.conf"

// carrierWait is how long a link without carrier waits before its DHCP
// clients start anyway, for drivers that do not report carrier.
const carrierWait = 3 * time.Second

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

// options are the seams the tests turn.
type options struct {
	dir         string                 // the generated files
	wired       func(name string) bool // which links to configure
	hostname    func() string
	setHostname func(string) error
}

func defaultOptions() options {
	return options{
		dir:   Dir,
		wired: func(name string) bool { return isWired("/sys/class/net", name) },
		hostname: func() string {
			h, _ := os.Hostname()
			return h
		},
		setHostname: func(h string) error { return unix.Sethostname([]byte(h)) },
	}
}

// LoopbackUp brings lo up (the kernel gives it 127.0.0.1 and ::1).
func LoopbackUp() error {
	lo, err := rtnl.Index("lo")
	if err != nil {
		return err
	}
	return rtnl.SetUp(lo)
}

// isWired says whether a link is an Ethernet device backed by hardware: it
// has a device in sysfs and no wireless directory.
func isWired(sysClassNet, name string) bool {
	dir := filepath.Join(sysClassNet, name)
	if _, err := os.Stat(filepath.Join(dir, "device")); err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, "wireless")); err == nil {
		return false
	}
	t, err := os.ReadFile(filepath.Join(dir, "type"))
	return err == nil && strings.TrimSpace(string(t)) == "1" // ARPHRD_ETHER
}

// Network is the machine's network configuration as it runs.
type Network struct {
	log  Logger
	o    options
	plan ipconfig.Plan
	ctx  context.Context

	mu        sync.Mutex
	links     map[int]*link
	expect    int // links that are being configured
	first     chan struct{}
	firstOnce sync.Once
	closing   bool
	mon       *rtnl.Monitor
	wg        sync.WaitGroup

	hostname      string // the machine's hostname; "" until one is known
	hostnameFixed bool   // set by ip= or before ginit: leases do not change it
	hostnameLink  int    // the link whose lease named the machine
	written       map[string]string
}

// Up brings lo up and starts configuring the links in the background, as
// ip= says. It returns nil when ip= turns the network off. The workload's
// resolv.conf, hosts and hostname exist from here on, lease or not.
func Up(ctx context.Context, p Params, log Logger) *Network {
	return up(ctx, p, log, defaultOptions())
}

func up(ctx context.Context, p Params, log Logger, o options) *Network {
	if err := LoopbackUp(); err != nil {
		log.Warnf("%v", err)
	}
	plan, errs := ipconfig.NewPlan(p.IP)
	for _, err := range errs {
		log.Warnf("%v; ignored", err)
	}
	n := &Network{log: log, o: o, plan: plan, ctx: ctx, links: map[int]*link{}, first: make(chan struct{}), written: map[string]string{}}
	n.initHostname()
	n.mu.Lock()
	n.writeFiles()
	n.mu.Unlock()
	if plan.Off() {
		log.Debugf("ip=off: no network configuration")
		return nil
	}
	if err := n.start(); err != nil {
		log.Warnf("network: %v", err)
		return nil
	}
	go func() {
		defer n.recover("shutdown")
		<-ctx.Done()
		n.Close(context.Background())
	}()
	return n
}

func (n *Network) initHostname() {
	for _, e := range n.plan.Entries() {
		if e.Hostname != "" {
			n.hostname, n.hostnameFixed = e.Hostname, true
			break
		}
	}
	if !n.hostnameFixed {
		switch h := n.o.hostname(); h {
		case "", "(none)", "localhost":
			n.hostname = "localhost"
		default:
			n.hostname, n.hostnameFixed = h, true
			return
		}
	}
	if err := n.o.setHostname(n.hostname); err != nil {
		n.log.Warnf("set hostname %s: %v", n.hostname, err)
	}
}

// start watches the links and configures those there now.
func (n *Network) start() error {
	mon, err := rtnl.WatchLinks()
	if err != nil {
		return err
	}
	links, err := rtnl.Links()
	if err != nil {
		mon.Close()
		return err
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Name < links[j].Name })
	n.mu.Lock()
	n.mon = mon
	for _, l := range links {
		n.addLocked(l)
	}
	if n.expect == 0 {
		n.log.Debugf("no wired link to configure")
	}
	n.mu.Unlock()
	n.wg.Add(1)
	go n.watch()
	return nil
}

func (n *Network) watch() {
	defer n.wg.Done()
	defer n.recover("link watcher")
	for {
		evs, err := n.mon.Next()
		if err != nil {
			n.mu.Lock()
			closing := n.closing
			n.mu.Unlock()
			if !closing {
				n.log.Warnf("watching links: %v; links that appear from now on are not configured", err)
			}
			return
		}
		n.mu.Lock()
		for _, e := range evs {
			if n.closing {
				break
			}
			lk := n.links[e.Index]
			switch {
			case e.Gone && lk != nil:
				n.log.Infof("%s: link gone", lk.name)
				lk.stopLocked(false)
				delete(n.links, e.Index)
				n.writeFiles()
			case lk == nil && !e.Gone:
				n.addLocked(e.Link)
			case lk != nil:
				lk.carrierLocked(e.Carrier())
			}
		}
		n.mu.Unlock()
	}
}

func (n *Network) recover(what string) {
	if r := recover(); r != nil {
		n.log.Warnf("network: %s stopped: panic: %v", what, r)
	}
}

// signalFirst says a link is configured.
func (n *Network) signalFirst() {
	n.firstOnce.Do(func() { close(n.first) })
}

// addLocked starts configuring a new link, if it is wired and ip= wants it.
func (n *Network) addLocked(l rtnl.Link) {
	if l.Type != unix.ARPHRD_ETHER || !n.o.wired(l.Name) {
		return
	}
	entry, ok := n.plan.For(l.Name, len(n.links) == 0)
	if !ok {
		n.log.Debugf("%s: not configured (ip=)", l.Name)
		return
	}
	lk := &link{n: n, index: l.Index, name: l.Name, hw: l.HW, entry: entry, seen: time.Now(), raDNS: map[netip.Addr]raDNS{}}
	n.links[l.Index] = lk
	n.expect++
	lk.upLocked(l)
}

// WaitFirst waits until a link is configured (a lease, or a static
// address) or timeout, and says whether one was. With no link to
// configure it returns true at once: there is nothing to wait for.
func (n *Network) WaitFirst(timeout time.Duration) bool {
	if n == nil {
		return true
	}
	n.mu.Lock()
	expect := n.expect
	n.mu.Unlock()
	select {
	case <-n.first:
		return true
	default:
	}
	if expect == 0 {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-n.first:
		return true
	case <-t.C:
		return false
	}
}

// Close releases the leases (DHCPRELEASE, DHCPv6 Release), removes what
// they configured and stops every client, waiting for them until ctx ends.
// It is safe on a nil Network and more than once.
func (n *Network) Close(ctx context.Context) {
	if n == nil {
		return
	}
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return
	}
	n.closing = true
	if n.mon != nil {
		n.mon.Close()
	}
	for _, lk := range n.links {
		lk.stopLocked(true)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.log.Warnf("network: clients still running at shutdown")
	}
}

// xid returns a transaction id. It never waits for the kernel's random
// number generator: an id need not be secret, and the first DHCP exchange
// must not hang on entropy.
func xid() uint32 {
	var b [4]byte
	if _, err := unix.Getrandom(b[:], unix.GRND_INSECURE); err != nil {
		if _, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK); err != nil {
			t := uint64(time.Now().UnixNano())
			binary.NativeEndian.PutUint32(b[:], uint32(t^t>>32)^uint32(os.Getpid()))
		}
	}
	return binary.NativeEndian.Uint32(b[:])
}

// link is one configured link.
type link struct {
	n     *Network
	index int
	name  string
	hw    []byte
	entry ipconfig.Entry
	seen  time.Time

	started bool // DHCP clients started (carrier seen, or waited for)
	carrier bool
	stopped bool

	conn4   *conn4
	ctl4    chan dhcp4.Control
	lease4  *dhcp4.Lease // applied
	logged4 bool

	conn6     *conn6
	ctl6      chan dhcp6.Control
	v6started bool
	lease6    *dhcp6.Lease

	ra     *connRA
	raSeen bool
	rsGen  int
	raDNS  map[netip.Addr]raDNS // by router
	slaac  bool
}

type raDNS struct {
	servers []netip.Addr
	search  []string
}

func (lk *link) since() int64 { return time.Since(lk.seen).Milliseconds() }

// metric orders the routes of several links: the first link's win.
func (lk *link) metric() uint32 { return 1024 + uint32(lk.index) }

func (lk *link) upLocked(l rtnl.Link) {
	n := lk.n
	e := lk.entry
	if e.MTU != 0 {
		if err := rtnl.SetMTU(lk.index, e.MTU); err != nil {
			n.log.Warnf("%s: %v", lk.name, err)
		}
	}
	if e.Method&ipconfig.RA != 0 {
		// Open before the link goes up, to see the advertisement that
		// answers the kernel's first solicitation.
		ra, err := openConnRA(lk.index, lk.name)
		switch {
		case errors.Is(err, unix.EAFNOSUPPORT):
			n.log.Debugf("%s: no IPv6 in this kernel: %v", lk.name, err)
		case err != nil:
			n.log.Warnf("%s: %v", lk.name, err)
		default:
			lk.ra = ra
			n.wg.Add(1)
			go lk.runRA(ra)
		}
	}
	if err := rtnl.SetUp(lk.index); err != nil {
		n.log.Warnf("%s: %v", lk.name, err)
	}
	if e.Static() {
		lk.applyStaticLocked()
	}
	if e.Method&(ipconfig.DHCP4|ipconfig.DHCP6|ipconfig.RA) == 0 {
		return
	}
	n.log.Debugf("%s: up, waiting for carrier", lk.name)
	if l.Carrier() {
		lk.carrierLocked(true)
		return
	}
	time.AfterFunc(carrierWait, func() {
		defer n.recover(lk.name + " carrier wait")
		n.mu.Lock()
		defer n.mu.Unlock()
		if !lk.started && !lk.stopped && !n.closing {
			n.log.Debugf("%s: no carrier after %v; starting DHCP anyway", lk.name, carrierWait)
			lk.startLocked()
		}
	})
}

// carrierLocked follows the link's carrier: the clients start on the
// first, and ask again for their leases when it comes back.
func (lk *link) carrierLocked(on bool) {
	was := lk.carrier
	lk.carrier = on
	if !on {
		if was {
			lk.n.log.Infof("%s: carrier lost", lk.name)
		}
		return
	}
	if was || lk.stopped {
		return
	}
	if !lk.started {
		lk.startLocked()
		return
	}
	lk.n.log.Infof("%s: carrier back: asking again for the leases", lk.name)
	// One order at most waits in each channel besides Stop, so that Stop,
	// sent under n.mu, never blocks on a client that waits for n.mu.
	if lk.ctl4 != nil && len(lk.ctl4) == 0 {
		lk.ctl4 <- dhcp4.Restart
		lk.conn4.wake()
	}
	if lk.ctl6 != nil && len(lk.ctl6) == 0 {
		lk.ctl6 <- dhcp6.Restart
		lk.conn6.wake()
	}
	lk.solicitLocked()
}

func (lk *link) startLocked() {
	lk.started = true
	n := lk.n
	if lk.entry.Method&ipconfig.DHCP4 != 0 {
		c, err := openConn4(lk.index, lk.name)
		if err != nil {
			n.log.Warnf("%s: %v", lk.name, err)
		} else {
			lk.conn4, lk.ctl4 = c, make(chan dhcp4.Control, 2)
			n.wg.Add(1)
			go lk.run4()
		}
	}
	if lk.entry.Method&ipconfig.DHCP6 != 0 {
		lk.start6Locked(false)
	}
	lk.solicitLocked()
}

// solicitLocked asks routers to advertise now rather than when the kernel
// does, which waits a second first. Until the link's multicast route exists
// a send fails, and is tried again shortly; at most three go out, 4 s apart
// (RFC 4861), until an advertisement comes.
func (lk *link) solicitLocked() {
	if lk.ra == nil {
		return
	}
	lk.rsGen++
	lk.solicitAttemptLocked(lk.rsGen, 0, 0)
}

func (lk *link) solicitAttemptLocked(gen, sent, failed int) {
	if lk.raSeen || lk.stopped || gen != lk.rsGen {
		return
	}
	wait := 4 * time.Second
	err := lk.ra.solicit()
	if err == nil {
		if sent++; sent >= 3 {
			return
		}
	} else if failed++; failed < 50 {
		wait = 100 * time.Millisecond
	} else {
		lk.n.log.Debugf("%s: router solicitation: %v", lk.name, err)
		return
	}
	time.AfterFunc(wait, func() {
		defer lk.n.recover(lk.name + " router solicitation")
		lk.n.mu.Lock()
		defer lk.n.mu.Unlock()
		lk.solicitAttemptLocked(gen, sent, failed)
	})
}

// stopLocked stops the link's clients; with release they release their
// leases first.
func (lk *link) stopLocked(release bool) {
	if lk.stopped {
		return
	}
	lk.stopped = true
	if lk.ra != nil {
		lk.ra.Close()
	}
	if release {
		if lk.ctl4 != nil {
			lk.ctl4 <- dhcp4.Stop
			lk.conn4.wake()
		}
		if lk.ctl6 != nil {
			lk.ctl6 <- dhcp6.Stop
			lk.conn6.wake()
		}
		return
	}
	if lk.conn4 != nil {
		lk.conn4.Close()
	}
	if lk.conn6 != nil {
		lk.conn6.Close()
	}
}

func (lk *link) run4() {
	n := lk.n
	defer n.wg.Done()
	defer lk.conn4.Close()
	defer n.recover(lk.name + " DHCPv4")
	n.mu.Lock()
	host := ""
	if n.hostnameFixed {
		host = n.hostname
	}
	n.mu.Unlock()
	sendErrs := 0
	d := &dhcp4.Driver{
		Client: &dhcp4.Client{HW: lk.hw, Hostname: host, XID: xid},
		Conn:   lk.conn4,
		Now:    time.Now,
		Ctl:    lk.ctl4,
		Handle: lk.handle4,
		SendError: func(err error) {
			if sendErrs++; sendErrs == 1 {
				n.log.Debugf("%s: DHCPv4 send: %v", lk.name, err)
			}
		},
	}
	if err := d.Run(); err != nil && !lk.isStopped() {
		n.log.Warnf("%s: DHCPv4 stopped: %v", lk.name, err)
	}
}

func (lk *link) isStopped() bool {
	lk.n.mu.Lock()
	defer lk.n.mu.Unlock()
	return lk.stopped
}

func (lk *link) start6Locked(stateless bool) {
	if lk.v6started {
		return
	}
	lk.v6started = true
	c, err := openConn6(lk.index, lk.name)
	if err != nil {
		lk.n.log.Warnf("%s: %v", lk.name, err)
		return
	}
	lk.conn6, lk.ctl6 = c, make(chan dhcp6.Control, 2)
	lk.n.wg.Add(1)
	go lk.run6(stateless)
}

func (lk *link) run6(stateless bool) {
	n := lk.n
	defer n.wg.Done()
	defer lk.conn6.Close()
	defer n.recover(lk.name + " DHCPv6")
	sendErrs := 0
	d := &dhcp6.Driver{
		Client: &dhcp6.Client{HW: lk.hw, Stateless: stateless, XID: xid},
		Conn:   lk.conn6,
		Now:    time.Now,
		Ctl:    lk.ctl6,
		Handle: lk.handle6,
		SendError: func(err error) {
			if sendErrs++; sendErrs == 1 {
				n.log.Debugf("%s: DHCPv6 send: %v", lk.name, err)
			}
		},
	}
	if err := d.Run(); err != nil && !lk.isStopped() {
		n.log.Warnf("%s: DHCPv6 stopped: %v", lk.name, err)
	}
}

func (lk *link) runRA(c *connRA) {
	n := lk.n
	defer n.wg.Done()
	defer n.recover(lk.name + " router advertisements")
	for {
		ra, router, err := c.next()
		if err != nil {
			return
		}
		n.mu.Lock()
		if lk.stopped {
			n.mu.Unlock()
			return
		}
		if !lk.raSeen {
			n.log.Infof("%s: router advertisement from %v: managed=%v other=%v slaac=%v dns %v (%d ms after the link appeared)",
				lk.name, router, ra.Managed, ra.Other, ra.SLAAC(), ra.RDNSS, lk.since())
		}
		lk.raSeen = true
		if len(ra.RDNSS) > 0 || len(ra.DNSSL) > 0 {
			if ra.DNSLifetime == 0 {
				delete(lk.raDNS, router)
			} else {
				lk.raDNS[router] = raDNS{servers: ra.RDNSS, search: ra.DNSSL}
			}
			n.writeFiles()
		}
		switch {
		case ra.Managed:
			lk.start6Locked(false)
		case ra.Other:
			lk.start6Locked(true)
		}
		if ra.SLAAC() && !lk.slaac {
			lk.slaac = true
			if lk.entry.Method&ipconfig.DHCP4 == 0 {
				n.signalFirst()
			}
		}
		n.mu.Unlock()
	}
}

func (lk *link) routes4(l dhcp4.Lease) []rtnl.Route {
	var rs []rtnl.Route
	for _, r := range l.Routes() {
		rt := rtnl.Route{Dst: r.Dst, Gw: r.Gw, Src: l.Addr.Addr(), Index: lk.index, Protocol: unix.RTPROT_DHCP, Metric: lk.metric()}
		if r.Gw.IsValid() && !l.Addr.Contains(r.Gw) {
			rt.OnLink = true
		}
		rs = append(rs, rt)
	}
	return rs
}

// handle4 applies or drops a DHCPv4 lease.
func (lk *link) handle4(r dhcp4.Result) {
	n := lk.n
	n.mu.Lock()
	defer n.mu.Unlock()
	old := lk.lease4
	if r.Drop != nil && old != nil {
		for _, rt := range lk.routes4(*old) {
			_ = rtnl.DelRoute(rt)
		}
		if err := rtnl.DelAddr(lk.index, old.Addr); err != nil {
			n.log.Debugf("%s: %v", lk.name, err)
		}
		n.log.Infof("%s: DHCPv4 lease %v ended", lk.name, old.Addr)
		lk.lease4, old = nil, nil
	}
	if r.Apply == nil {
		n.writeFiles()
		return
	}
	l := *r.Apply
	var warns []string
	now := time.Now()
	left := l.Remaining(now)
	if err := rtnl.ReplaceAddr(lk.index, rtnl.Addr{Prefix: l.Addr, Valid: left, Preferred: left}); err != nil {
		warns = append(warns, err.Error())
	}
	if l.MTU != 0 && lk.entry.MTU == 0 && (old == nil || old.MTU != l.MTU) {
		if err := rtnl.SetMTU(lk.index, l.MTU); err != nil {
			warns = append(warns, err.Error())
		}
	}
	want := lk.routes4(l)
	if old != nil {
		for _, rt := range lk.routes4(*old) {
			if !slices.Contains(want, rt) {
				_ = rtnl.DelRoute(rt)
			}
		}
	}
	for _, rt := range want {
		if err := rtnl.ReplaceRoute(rt); err != nil {
			warns = append(warns, err.Error())
		}
	}
	lk.lease4 = &l
	switch {
	case !lk.logged4:
		lk.logged4 = true
		n.log.Infof("%s: DHCPv4 %v (%d ms after the link appeared)", lk.name, l, lk.since())
	case old == nil || !old.SameConfig(l):
		n.log.Infof("%s: DHCPv4 %v", lk.name, l)
	default:
		n.log.Debugf("%s: DHCPv4 lease renewed: %v", lk.name, l)
	}
	for _, w := range warns {
		n.log.Warnf("%s: %s", lk.name, w)
	}
	if l.Hostname != "" && !n.hostnameFixed && (n.hostnameLink == 0 || n.hostnameLink == lk.index) && n.hostname != l.Hostname {
		if err := ipconfig.CheckHostname(l.Hostname); err != nil {
			n.log.Warnf("%s: lease %v", lk.name, err)
		} else if err := n.o.setHostname(l.Hostname); err != nil {
			n.log.Warnf("set hostname %s: %v", l.Hostname, err)
		} else {
			n.hostname, n.hostnameLink = l.Hostname, lk.index
		}
	}
	n.writeFiles()
	n.signalFirst()
}

// handle6 applies or drops a DHCPv6 lease.
func (lk *link) handle6(r dhcp6.Result) {
	n := lk.n
	n.mu.Lock()
	defer n.mu.Unlock()
	old := lk.lease6
	if r.Drop != nil && old != nil {
		if old.Addr.IsValid() {
			if err := rtnl.DelAddr(lk.index, netip.PrefixFrom(old.Addr, 128)); err != nil {
				n.log.Debugf("%s: %v", lk.name, err)
			}
			n.log.Infof("%s: DHCPv6 lease %v ended", lk.name, old.Addr)
		}
		lk.lease6, old = nil, nil
	}
	if r.Apply == nil {
		n.writeFiles()
		return
	}
	l := *r.Apply
	if l.Addr.IsValid() {
		valid, pref := l.Remaining(time.Now())
		if err := rtnl.ReplaceAddr(lk.index, rtnl.Addr{Prefix: netip.PrefixFrom(l.Addr, 128), Valid: valid, Preferred: pref}); err != nil {
			n.log.Warnf("%s: %v", lk.name, err)
		}
	}
	lk.lease6 = &l
	if old == nil || !old.SameConfig(l) {
		n.log.Infof("%s: DHCPv6 %v (%d ms after the link appeared)", lk.name, l, lk.since())
	} else {
		n.log.Debugf("%s: DHCPv6 lease renewed: %v", lk.name, l)
	}
	n.writeFiles()
	if l.Addr.IsValid() {
		n.signalFirst()
	}
}

func (lk *link) applyStaticLocked() {
	n, e := lk.n, lk.entry
	if err := rtnl.ReplaceAddr(lk.index, rtnl.Addr{Prefix: e.Addr}); err != nil {
		n.log.Warnf("%s: %v", lk.name, err)
		return
	}
	if e.Gateway.IsValid() {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if e.Gateway.Is6() {
			dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		rt := rtnl.Route{Dst: dst, Gw: e.Gateway, Index: lk.index, Protocol: unix.RTPROT_STATIC, Metric: lk.metric(), OnLink: !e.Addr.Contains(e.Gateway)}
		if err := rtnl.ReplaceRoute(rt); err != nil {
			n.log.Warnf("%s: %v", lk.name, err)
		}
	}
	gw := ""
	if e.Gateway.IsValid() {
		gw = " via " + e.Gateway.String()
	}
	n.log.Infof("%s: static %v%s dns %v", lk.name, e.Addr, gw, e.DNS)
	n.writeFiles()
	n.signalFirst()
}

// files renders resolv.conf, hosts and hostname from what every link has.
func (n *Network) files() map[string]string {
	links := make([]*link, 0, len(n.links))
	for _, lk := range n.links {
		links = append(links, lk)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].index < links[j].index })
	var servers []netip.Addr
	var search []string
	addNS := func(as ...netip.Addr) {
		for _, a := range as {
			if a.IsValid() && !slices.Contains(servers, a) {
				servers = append(servers, a)
			}
		}
	}
	addSearch := func(ds ...string) {
		for _, d := range ds {
			if validDomain(d) && !slices.Contains(search, d) {
				search = append(search, d)
			}
		}
	}
	for _, e := range n.plan.Entries() {
		addNS(e.DNS...)
	}
	var primary netip.Addr
	for _, lk := range links {
		if lk.entry.Static() && !primary.IsValid() {
			primary = lk.entry.Addr.Addr()
		}
		if l := lk.lease4; l != nil {
			addNS(l.DNS...)
			addSearch(l.Search...)
			if !primary.IsValid() {
				primary = l.Addr.Addr()
			}
		}
	}
	for _, lk := range links {
		if l := lk.lease6; l != nil {
			addNS(l.DNS...)
			addSearch(l.Search...)
			if !primary.IsValid() && l.Addr.IsValid() {
				primary = l.Addr
			}
		}
		routers := make([]netip.Addr, 0, len(lk.raDNS))
		for r := range lk.raDNS {
			routers = append(routers, r)
		}
		slices.SortFunc(routers, func(a, b netip.Addr) int { return a.Compare(b) })
		for _, r := range routers {
			addNS(lk.raDNS[r].servers...)
			addSearch(lk.raDNS[r].search...)
		}
	}
	var resolv strings.Builder
	resolv.WriteString("# generated by ginit from the network's leases\n")
	if len(search) > 0 {
		fmt.Fprintf(&resolv, "search %s\n", strings.Join(search, " "))
	}
	for _, s := range servers {
		fmt.Fprintf(&resolv, "nameserver %s\n", s.WithZone(""))
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	if n.hostname != "" && n.hostname != "localhost" {
		names := n.hostname
		if short, _, ok := strings.Cut(n.hostname, "."); ok {
			names += " " + short
		}
		addr := "127.0.1.1"
		if primary.IsValid() {
			addr = primary.String()
		}
		hosts += addr + "\t" + names + "\n"
	}
	return map[string]string{"resolv.conf": resolv.String(), "hosts": hosts, "hostname": n.hostname + "\n"}
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// writeFiles writes the files that changed. They are written in place, not
// renamed: the workload sees them through bind mounts of these very files.
func (n *Network) writeFiles() {
	if err := os.MkdirAll(n.o.dir, 0o755); err != nil {
		n.log.Warnf("mkdir %s: %v", n.o.dir, err)
		return
	}
	for name, text := range n.files() {
		if n.written[name] == text {
			continue
		}
		path := filepath.Join(n.o.dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			n.log.Warnf("write %s: %v", path, err)
			continue
		}
		n.written[name] = text
	}
}

// IntoRoot gives the workload's root the machine's resolv.conf, hosts and
// hostname: the files under /run/ginit are bind-mounted over the root's,
// so the disk is not changed and renewals show through. Where the root has
// no such file, an empty one is made to mount on (a symlink's target is
// made where it points, as into /run); a read-only root without one goes
// without.
func IntoRoot(root string, log Logger) {
	intoRoot(root, Dir, log)
}

func intoRoot(root, dir string, log Logger) {
	for _, name := range []string{"resolv.conf", "hosts", "hostname"} {
		src := filepath.Join(dir, name)
		if _, err := os.Stat(src); err != nil {
			// Up did not run: an empty file still hides the disk's.
			if err := os.MkdirAll(dir, 0o755); err == nil {
				_ = os.WriteFile(src, nil, 0o644)
			}
		}
		if err := bindInto(root, "/etc/"+name, src); errors.Is(err, unix.EROFS) {
			log.Debugf("%v", err)
		} else if err != nil {
			log.Warnf("%v", err)
		}
	}
}
