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
// Nothing here blocks the boot: Up returns at once, WaitFirst bounds the
// wait for the first lease, and IPv6 comes in the background.
//
// The files: watch.go follows the links, link.go holds a link's state and
// its carrier, v4.go and v6.go run the DHCPv4, router advertisement and
// DHCPv6 clients, apply.go puts their results into the kernel, and files.go
// renders resolv.conf, hosts and hostname from a snapshot.
package netconf

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

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
	// DNS replaces the name servers of the leases and routers, as docker
	// run --dns does; ip='s own still come first.
	DNS []netip.Addr
	// Hosts are more /etc/hosts lines ("IP NAME"), as docker run --add-host.
	Hosts []string
}

// options are the seams the tests turn.
type options struct {
	dir         string                 // the generated files
	wired       func(name string) bool // which links to configure
	hostname    func() string
	setHostname func(string) error
	ipv6Conf    string // the per-link IPv6 sysctls
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
		ipv6Conf:    "/proc/sys/net/ipv6/conf",
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
	p    Params

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
func Up(p Params, log Logger) *Network {
	return up(p, log, defaultOptions())
}

func up(p Params, log Logger, o options) *Network {
	if err := LoopbackUp(); err != nil {
		log.Warnf("%v", err)
	}
	plan, errs := ipconfig.NewPlan(p.IP)
	for _, err := range errs {
		log.Warnf("%v; ignored", err)
	}
	n := &Network{log: log, o: o, plan: plan, p: p, links: map[int]*link{}, first: make(chan struct{}), written: map[string]string{}}
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

func (n *Network) recover(what string) {
	if r := recover(); r != nil {
		n.log.Warnf("network: %s stopped: panic: %v", what, r)
	}
}

// signalFirst says a link is configured.
func (n *Network) signalFirst() {
	n.firstOnce.Do(func() { close(n.first) })
}

// WaitFirst waits until a link is configured (a lease, or a static
// address), within timeout, and says whether one was. With no link to
// configure it returns true at once: there is nothing to wait for. IPv6 is
// not waited for: routers answer a second or more after the link appears,
// and the addresses they promise come while the workload runs, as they
// would on any host that just booted.
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
		if expect == 0 {
			return true
		}
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
