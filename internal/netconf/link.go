package netconf

import (
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/dhcp4"
	"github.com/ginit-dev/ginit/internal/dhcp6"
	"github.com/ginit-dev/ginit/internal/ipconfig"
	"github.com/ginit-dev/ginit/internal/rtnl"
)

// link is one configured link. Its fields are guarded by n.mu.
type link struct {
	n     *Network
	index int
	name  string
	hw    []byte
	entry ipconfig.Entry
	seen  time.Time

	started   bool      // DHCP clients started (carrier seen, or waited for)
	startedAt time.Time // when they were
	carrier   bool
	stopped   bool

	conn4   *conn4
	ctl4    chan dhcp4.Control
	lease4  *dhcp4.Lease // applied
	logged4 bool

	conn6     *conn6
	ctl6      chan dhcp6.Control
	v6started bool
	lease6    *dhcp6.Lease

	ra        *connRA
	raSeen    bool
	rsGen     int
	solicited time.Time            // the first router solicitation sent
	raDNS     map[netip.Addr]raDNS // by router

	// What the routers promised, and what of it the kernel has made
	// usable (see v6.go).
	slaacPrefixes []netip.Prefix
	managed       bool
	slaacAddr     netip.Prefix // a usable SLAAC address
	dhcp6Usable   bool         // the DHCPv6 lease's address is usable
	watching6     bool
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
		if err := fastIPv6(n.o.ipv6Conf, lk.name); err != nil {
			n.log.Debugf("%s: %v", lk.name, err)
		}
		// Open before the link goes up, to see the advertisement that
		// answers the first solicitation.
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
	// Without this the kernel takes the link as operational only when its
	// link watcher next runs, up to a second after the driver's last
	// carrier change; IPv6 starts only then. Kernels whose ethtool link
	// query syncs the watcher (6.18 does; Debian 12's 6.1 does not) skip
	// that second.
	if _, err := rtnl.SyncCarrier(lk.name); err != nil {
		n.log.Debugf("%s: %v", lk.name, err)
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
	lk.started, lk.startedAt = true, time.Now()
	// Routers first: the advertisement decides what IPv6 needs.
	lk.solicitLocked()
	if lk.entry.Method&ipconfig.DHCP4 != 0 {
		lk.start4Locked()
	}
	if lk.entry.Method&ipconfig.DHCP6 != 0 {
		lk.start6Locked(false)
	}
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

func (lk *link) isStopped() bool {
	lk.n.mu.Lock()
	defer lk.n.mu.Unlock()
	return lk.stopped
}
