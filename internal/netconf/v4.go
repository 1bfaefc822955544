package netconf

import (
	"time"

	"github.com/ginit-dev/ginit/internal/dhcp4"
	"github.com/ginit-dev/ginit/internal/ipconfig"
)

func (lk *link) start4Locked() {
	c, err := openConn4(lk.index, lk.name)
	if err != nil {
		lk.n.log.Warnf("%s: %v", lk.name, err)
		return
	}
	lk.conn4, lk.ctl4 = c, make(chan dhcp4.Control, 2)
	lk.n.wg.Add(1)
	go lk.run4()
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

// handle4 applies or drops a DHCPv4 lease.
func (lk *link) handle4(r dhcp4.Result) {
	n := lk.n
	n.mu.Lock()
	defer n.mu.Unlock()
	old := lk.lease4
	if r.Drop != nil && old != nil {
		if err := drop4(lk.index, lk.metric(), *old); err != nil {
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
	warns := apply4(lk.index, lk.metric(), old, l, lk.entry.MTU == 0, time.Now())
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
		n.log.Warnf("%s: %v", lk.name, w)
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

func (lk *link) applyStaticLocked() {
	n, e := lk.n, lk.entry
	if err := applyStatic(lk.index, lk.metric(), e); err != nil {
		n.log.Warnf("%s: %v", lk.name, err)
		return
	}
	gw := ""
	if e.Gateway.IsValid() {
		gw = " via " + e.Gateway.String()
	}
	n.log.Infof("%s: static %v%s dns %v", lk.name, e.Addr, gw, e.DNS)
	n.writeFiles()
	n.signalFirst()
}
