package netconf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/dhcp4"
	"github.com/ginit-dev/ginit/internal/dhcp6"
	"github.com/ginit-dev/ginit/internal/ipconfig"
	"github.com/ginit-dev/ginit/internal/rtnl"
)

// This file puts configurations into the kernel; it keeps no state.

func leaseRoutes(index int, metric uint32, l dhcp4.Lease) []rtnl.Route {
	var rs []rtnl.Route
	for _, r := range l.Routes() {
		rt := rtnl.Route{Dst: r.Dst, Gw: r.Gw, Src: l.Addr.Addr(), Index: index, Protocol: unix.RTPROT_DHCP, Metric: metric}
		if r.Gw.IsValid() && !l.Addr.Contains(r.Gw) {
			rt.OnLink = true
		}
		rs = append(rs, rt)
	}
	return rs
}

// apply4 applies lease l (address, MTU when setMTU, routes), replacing
// old's routes that l does not have. It returns what failed.
func apply4(index int, metric uint32, old *dhcp4.Lease, l dhcp4.Lease, setMTU bool, now time.Time) []error {
	var errs []error
	left := l.Remaining(now)
	if err := rtnl.ReplaceAddr(index, rtnl.Addr{Prefix: l.Addr, Valid: left, Preferred: left}); err != nil {
		errs = append(errs, err)
	}
	if l.MTU != 0 && setMTU && (old == nil || old.MTU != l.MTU) {
		if err := rtnl.SetMTU(index, l.MTU); err != nil {
			errs = append(errs, err)
		}
	}
	want := leaseRoutes(index, metric, l)
	if old != nil {
		for _, rt := range leaseRoutes(index, metric, *old) {
			if !slices.Contains(want, rt) {
				_ = rtnl.DelRoute(rt)
			}
		}
	}
	for _, rt := range want {
		if err := rtnl.ReplaceRoute(rt); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// drop4 removes what lease l configured.
func drop4(index int, metric uint32, l dhcp4.Lease) error {
	for _, rt := range leaseRoutes(index, metric, l) {
		_ = rtnl.DelRoute(rt)
	}
	return rtnl.DelAddr(index, l.Addr)
}

// apply6 puts the DHCPv6 lease's address on the link, optimistic where
// the link allows it, so that it is usable while detection runs.
func apply6(index int, l dhcp6.Lease, now time.Time) error {
	if !l.Addr.IsValid() {
		return nil
	}
	valid, pref := l.Remaining(now)
	return rtnl.ReplaceAddr(index, rtnl.Addr{Prefix: netip.PrefixFrom(l.Addr, 128), Valid: valid, Preferred: pref, Flags: unix.IFA_F_OPTIMISTIC})
}

func drop6(index int, l dhcp6.Lease) error {
	if !l.Addr.IsValid() {
		return nil
	}
	return rtnl.DelAddr(index, netip.PrefixFrom(l.Addr, 128))
}

func applyStatic(index int, metric uint32, e ipconfig.Entry) error {
	if err := rtnl.ReplaceAddr(index, rtnl.Addr{Prefix: e.Addr}); err != nil {
		return err
	}
	if !e.Gateway.IsValid() {
		return nil
	}
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if e.Gateway.Is6() {
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return rtnl.ReplaceRoute(rtnl.Route{Dst: dst, Gw: e.Gateway, Index: index, Protocol: unix.RTPROT_STATIC, Metric: metric, OnLink: !e.Addr.Contains(e.Gateway)})
}

// fastIPv6Conf are the link's IPv6 settings for a quick start, written
// before it goes up: optimistic duplicate address detection (RFC 4429)
// makes the link-local and SLAAC addresses usable at once, so that the
// first router solicitation and DHCPv6 message go out without waiting a
// second for detection; and the kernel's own solicitation goes without
// its extra delay.
var fastIPv6Conf = [][2]string{
	{"optimistic_dad", "1"},
	{"use_optimistic", "1"},
	{"router_solicitation_delay", "0"},
}

// fastIPv6 writes fastIPv6Conf under dir (/proc/sys/net/ipv6/conf) for
// the link. A kernel without IPv6 or optimistic detection lacks the files:
// the link then works as the kernel's defaults say.
func fastIPv6(dir, name string) error {
	var errs []error
	for _, kv := range fastIPv6Conf {
		path := filepath.Join(dir, name, kv[0])
		if err := os.WriteFile(path, []byte(kv[1]), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("set %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}
