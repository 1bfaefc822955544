package netconf

import (
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/dhcp6"
	"github.com/ginit-dev/ginit/internal/ipconfig"
	"github.com/ginit-dev/ginit/internal/rtnl"
)

// IPv6 readiness: a link whose router answered is ready when the addresses
// the advertisement promised are usable (a SLAAC address in an autonomous
// prefix; the DHCPv6 lease's address when it says Managed). A link whose
// router has not answered within raGrace of the first solicitation is
// taken to have none. Routers delay an answer by up to 0.5 s (RFC 4861).
const (
	raGrace = time.Second
	v6Poll  = 20 * time.Millisecond // how often the kernel's addresses are read
	v6Watch = 30 * time.Second      // how long for them at most
)

// v6PendingLocked says whether the link's IPv6 configuration is still to
// come.
func (lk *link) v6PendingLocked(now time.Time) bool {
	if lk.ra == nil || !lk.started || lk.stopped {
		return false
	}
	if !lk.raSeen {
		since := lk.startedAt
		if !lk.solicited.IsZero() {
			since = lk.solicited
		}
		return now.Before(since.Add(raGrace))
	}
	return len(lk.slaacPrefixes) > 0 && !lk.slaacAddr.IsValid() || lk.managed && !lk.dhcp6Usable
}

// v6DoneLocked says whether the link has a usable IPv6 address of its
// router's giving.
func (lk *link) v6DoneLocked() bool { return lk.slaacAddr.IsValid() || lk.dhcp6Usable }

// watch6Locked follows the kernel's addresses on the link until those the
// router promised are usable.
func (lk *link) watch6Locked() {
	if lk.watching6 || !lk.v6PendingLocked(time.Now()) {
		return
	}
	lk.watching6 = true
	lk.n.wg.Add(1)
	go lk.watch6()
}

func (lk *link) watch6() {
	n := lk.n
	defer n.wg.Done()
	defer n.recover(lk.name + " IPv6 addresses")
	end := time.Now().Add(v6Watch)
	for {
		as, err := rtnl.Addrs6(lk.index)
		n.mu.Lock()
		if err == nil {
			lk.addrs6Locked(as)
		}
		if lk.stopped || n.closing || !lk.v6PendingLocked(time.Now()) || time.Now().After(end) {
			lk.watching6 = false
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		time.Sleep(v6Poll)
	}
}

// addrs6Locked notes the usable addresses among the link's.
func (lk *link) addrs6Locked(as []rtnl.LinkAddr) {
	n := lk.n
	for _, a := range as {
		if !a.Usable() || a.Scope >= unix.RT_SCOPE_LINK {
			continue
		}
		ip := a.Prefix.Addr()
		if !lk.slaacAddr.IsValid() && a.Prefix.Bits() == 64 {
			for _, p := range lk.slaacPrefixes {
				if p.Contains(ip) {
					lk.slaacAddr = a.Prefix
					n.log.Infof("%s: IPv6 %v usable, by SLAAC (%d ms after the link appeared)", lk.name, a.Prefix, lk.since())
					break
				}
			}
		}
		if !lk.dhcp6Usable && lk.lease6 != nil && lk.lease6.Addr == ip {
			lk.dhcp6Usable = true
			n.log.Infof("%s: IPv6 %v usable, by DHCPv6 (%d ms after the link appeared)", lk.name, ip, lk.since())
		}
	}
	if lk.v6DoneLocked() && lk.entry.Method&ipconfig.DHCP4 == 0 {
		n.signalFirst()
	}
}

// solicitLocked asks routers to advertise now rather than when the kernel
// does, after its link-local address is through detection. Until the
// kernel has the link's multicast route and link-local address (SyncCarrier
// hurries them) a send fails, and is tried again shortly.
// At most three go out, 4 s apart (RFC 4861), until an advertisement comes.
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
		if lk.solicited.IsZero() {
			lk.solicited = time.Now()
			lk.n.log.Debugf("%s: router solicitation sent (%d ms after the link appeared)", lk.name, lk.since())
		}
		if sent++; sent >= 3 {
			return
		}
	} else if failed++; failed < 250 {
		if failed == 1 {
			lk.n.log.Debugf("%s: router solicitation: %v; trying again", lk.name, err)
		}
		// The driver may have changed the carrier since the link went up.
		_, _ = rtnl.SyncCarrier(lk.name)
		wait = 20 * time.Millisecond
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
		lk.raLocked(ra, router)
		n.mu.Unlock()
	}
}

func (lk *link) raLocked(ra dhcp6.RA, router netip.Addr) {
	n := lk.n
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
		lk.managed = true
		lk.start6Locked(false)
	case ra.Other:
		lk.start6Locked(true)
	}
	for _, p := range ra.Prefixes {
		if p.Autonomous && p.Valid > 0 && p.Prefix.Bits() == 64 && !slices.Contains(lk.slaacPrefixes, p.Prefix) {
			lk.slaacPrefixes = append(lk.slaacPrefixes, p.Prefix)
		}
	}
	lk.watch6Locked()
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

// handle6 applies or drops a DHCPv6 lease.
func (lk *link) handle6(r dhcp6.Result) {
	n := lk.n
	n.mu.Lock()
	defer n.mu.Unlock()
	old := lk.lease6
	if r.Drop != nil && old != nil {
		if err := drop6(lk.index, *old); err != nil {
			n.log.Debugf("%s: %v", lk.name, err)
		}
		if old.Addr.IsValid() {
			n.log.Infof("%s: DHCPv6 lease %v ended", lk.name, old.Addr)
		}
		lk.lease6, old = nil, nil
		lk.dhcp6Usable = false
	}
	if r.Apply == nil {
		n.writeFiles()
		return
	}
	l := *r.Apply
	if err := apply6(lk.index, l, time.Now()); err != nil {
		n.log.Warnf("%s: %v", lk.name, err)
	}
	lk.lease6 = &l
	if old == nil || !old.SameConfig(l) {
		n.log.Infof("%s: DHCPv6 %v (%d ms after the link appeared)", lk.name, l, lk.since())
	} else {
		n.log.Debugf("%s: DHCPv6 lease renewed: %v", lk.name, l)
	}
	if old != nil && old.Addr != l.Addr {
		lk.dhcp6Usable = false
	}
	n.writeFiles()
	if l.Addr.IsValid() {
		n.signalFirst()
		lk.watch6Locked()
	}
}
