package netconf

import (
	"net/netip"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/rtnl"
)

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
