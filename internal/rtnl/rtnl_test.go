package rtnl

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// inNewNetns moves the test's locked thread into a fresh network namespace,
// so it changes no link of the machine. Needs root.
func inNewNetns(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "makes a network namespace")
	runtime.LockOSThread()
	// The thread is left in the namespace and never unlocked: the Go runtime
	// then retires it when the test goroutine ends.
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare(CLONE_NEWNET): %v", err)
	}
}

// addVeth makes a veth pair in the current namespace.
func addVeth(t *testing.T, a, b string) {
	t.Helper()
	msg := unix.IfInfomsg{Family: unix.AF_UNSPEC}
	peer := attr(structBytes(&msg), unix.IFLA_IFNAME, append([]byte(b), 0))
	data := attr(nil, 1 /* VETH_INFO_PEER */, peer)
	info := attr(nil, unix.IFLA_INFO_KIND, []byte("veth"))
	info = attr(info, unix.IFLA_INFO_DATA, data)
	body := attr(structBytes(&msg), unix.IFLA_IFNAME, append([]byte(a), 0))
	body = attr(body, unix.IFLA_LINKINFO, info)
	if err := request(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body, nil); err != nil {
		t.Fatalf("add veth %s/%s: %v", a, b, err)
	}
}

func TestLinkAddrRoute(t *testing.T) {
	inNewNetns(t)
	lo, err := Index("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := SetUp(lo); err != nil {
		t.Fatalf("SetUp(lo): %v", err)
	}
	ifi, err := net.InterfaceByIndex(lo)
	if err != nil || ifi.Flags&net.FlagUp == 0 {
		t.Fatalf("lo flags = %v, %v; want up", ifi, err)
	}
	addr := Addr{Prefix: netip.MustParsePrefix("192.0.2.10/24"), Valid: time.Hour, Preferred: 30 * time.Minute}
	if err := ReplaceAddr(lo, addr); err != nil {
		t.Fatalf("ReplaceAddr: %v", err)
	}
	// Replacing the same address again is not an error.
	if err := ReplaceAddr(lo, addr); err != nil {
		t.Fatalf("ReplaceAddr again: %v", err)
	}
	if !hasAddr(t, ifi, "192.0.2.10/24") {
		t.Errorf("lo lacks 192.0.2.10/24")
	}
	def := Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.1"), Index: lo, Protocol: unix.RTPROT_DHCP}
	if err := ReplaceRoute(def); err != nil {
		t.Fatalf("ReplaceRoute(default via 192.0.2.1): %v", err)
	}
	// A gateway outside every prefix of the link needs OnLink.
	far := Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Gw: netip.MustParseAddr("203.0.113.1"), Index: lo, OnLink: true, Metric: 7}
	if err := ReplaceRoute(far); err != nil {
		t.Fatalf("ReplaceRoute(%v): %v", far, err)
	}
	routes := readFile(t, "/proc/thread-self/net/route")
	// Destination 00000000 with gateway 192.0.2.1 (little-endian hex 010200C0).
	if !strings.Contains(routes, "00000000\t010200C0") {
		t.Errorf("/proc/net/route lacks the default route via 192.0.2.1:\n%s", routes)
	}
	if !strings.Contains(routes, "006433C6\t017100CB") {
		t.Errorf("/proc/net/route lacks 198.51.100.0/24 via 203.0.113.1:\n%s", routes)
	}
	for _, r := range []Route{def, far} {
		if err := DelRoute(r); err != nil {
			t.Errorf("DelRoute(%v): %v", r, err)
		}
	}
	if routes := readFile(t, "/proc/thread-self/net/route"); strings.Contains(routes, "010200C0") || strings.Contains(routes, "006433C6") {
		t.Errorf("routes left after DelRoute:\n%s", routes)
	}
	if err := DelAddr(lo, addr.Prefix); err != nil {
		t.Errorf("DelAddr: %v", err)
	}
	if hasAddr(t, ifi, "192.0.2.10/24") {
		t.Errorf("lo still has 192.0.2.10/24 after DelAddr")
	}
	// IPv6 on a veth, with a default route.
	addVeth(t, "v6a", "v6b")
	v6a, _ := Index("v6a")
	v6b, _ := Index("v6b")
	for _, i := range []int{v6a, v6b} {
		if err := SetUp(i); err != nil {
			t.Fatal(err)
		}
	}
	v6 := Addr{Prefix: netip.MustParsePrefix("2001:db8::5/64"), Valid: time.Hour}
	if err := ReplaceAddr(v6a, v6); err != nil {
		t.Fatalf("ReplaceAddr(%v): %v", v6.Prefix, err)
	}
	// An optimistic address is usable while its detection runs; the other
	// is tentative until it ends.
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/v6a/optimistic_dad", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	opt := Addr{Prefix: netip.MustParsePrefix("2001:db8::6/64"), Flags: unix.IFA_F_OPTIMISTIC}
	if err := ReplaceAddr(v6a, opt); err != nil {
		t.Fatalf("ReplaceAddr(%v optimistic): %v", opt.Prefix, err)
	}
	as, err := Addrs6(v6a)
	if err != nil {
		t.Fatalf("Addrs6: %v", err)
	}
	got := map[netip.Prefix]LinkAddr{}
	for _, a := range as {
		got[a.Prefix] = a
	}
	if a, ok := got[opt.Prefix]; !ok || !a.Usable() || a.Scope != unix.RT_SCOPE_UNIVERSE {
		t.Errorf("Addrs6(v6a)[%v] = %+v, %v; want a usable global address (all: %+v)", opt.Prefix, a, ok, as)
	}
	if a, ok := got[v6.Prefix]; !ok || a.Usable() && a.Flags&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("Addrs6(v6a)[%v] = %+v, %v; want it there, and not usable while tentative", v6.Prefix, a, ok)
	}
	if err := ReplaceRoute(Route{Dst: netip.MustParsePrefix("::/0"), Gw: netip.MustParseAddr("2001:db8::1"), Index: v6a}); err != nil {
		t.Errorf("ReplaceRoute(::/0 via 2001:db8::1): %v", err)
	}
	if r6 := readFile(t, "/proc/thread-self/net/ipv6_route"); !strings.Contains(r6, "00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001") {
		t.Errorf("ipv6_route lacks ::/0 via 2001:db8::1:\n%s", r6)
	}
	if err := SetUp(99999); err == nil {
		t.Errorf("SetUp(no such link) succeeded; want an error")
	}
}

func TestSyncCarrier(t *testing.T) {
	inNewNetns(t)
	addVeth(t, "sca", "scb")
	for _, name := range []string{"sca", "scb"} {
		i, err := Index(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := SetUp(i); err != nil {
			t.Fatal(err)
		}
	}
	if up, err := SyncCarrier("sca"); err != nil || !up {
		t.Errorf("SyncCarrier(sca) = %v, %v; want true with both ends up", up, err)
	}
	// Synced: the kernel takes the link as operational at once, and IPv6
	// gives it its link-local address.
	sca, _ := Index("sca")
	as, err := Addrs6(sca)
	ll := false
	for _, a := range as {
		ll = ll || a.Prefix.Addr().IsLinkLocalUnicast()
	}
	if err != nil || !ll {
		t.Errorf("Addrs6(sca) right after SyncCarrier = %+v, %v; want a link-local address", as, err)
	}
	if _, err := SyncCarrier("nosuchlink"); err == nil {
		t.Errorf("SyncCarrier(nosuchlink) succeeded; want an error")
	}
}

func TestLinkAddrUsable(t *testing.T) {
	for _, c := range []struct {
		flags uint32
		want  bool
	}{
		{0, true},
		{unix.IFA_F_PERMANENT, true},
		{unix.IFA_F_TENTATIVE, false},
		{unix.IFA_F_TENTATIVE | unix.IFA_F_OPTIMISTIC, true},
		{unix.IFA_F_DADFAILED | unix.IFA_F_TENTATIVE, false},
	} {
		if got := (LinkAddr{Flags: c.flags}).Usable(); got != c.want {
			t.Errorf("LinkAddr{Flags: %#x}.Usable() = %v; want %v", c.flags, got, c.want)
		}
	}
}

func TestLinksWatchAndMTU(t *testing.T) {
	inNewNetns(t)
	mon, err := WatchLinks()
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	addVeth(t, "ga", "gb")
	links, err := Links()
	if err != nil {
		t.Fatal(err)
	}
	var ga Link
	for _, l := range links {
		if l.Name == "ga" {
			ga = l
		}
	}
	if ga.Index == 0 || ga.Type != unix.ARPHRD_ETHER || len(ga.HW) != 6 || ga.MTU != 1500 {
		t.Fatalf("Links() ga = %+v; want an Ethernet link with MTU 1500", ga)
	}
	seen := map[string]bool{}
	for !seen["ga"] || !seen["gb"] {
		evs, err := mon.Next()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			seen[e.Name] = true
		}
	}
	if err := SetMTU(ga.Index, 1400); err != nil {
		t.Fatal(err)
	}
	if err := SetUp(ga.Index); err != nil {
		t.Fatal(err)
	}
	gb, _ := Index("gb")
	if err := SetUp(gb); err != nil {
		t.Fatal(err)
	}
	// Both ends up: ga gains carrier, and the monitor says so.
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs, err := mon.Next()
		if err != nil {
			t.Fatal(err)
		}
		done := false
		for _, e := range evs {
			if e.Name == "ga" && e.Carrier() && e.MTU == 1400 {
				done = true
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no carrier event for ga with MTU 1400")
		}
	}
	// Close wakes a Next in progress.
	errc := make(chan error, 1)
	go func() { _, err := mon.Next(); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	mon.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Errorf("Next after Close = nil error")
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Close did not wake Next")
	}
}

func hasAddr(t *testing.T, ifi *net.Interface, want string) bool {
	addrs, err := ifi.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.String() == want {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLifetime(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want uint32
	}{{0, 0xffffffff}, {time.Millisecond, 1}, {90 * time.Second, 90}, {200 * 365 * 24 * time.Hour, 0xffffffff}} {
		if got := lifetime(tc.d); got != tc.want {
			t.Errorf("lifetime(%v) = %d; want %d", tc.d, got, tc.want)
		}
	}
}

// Index agrees with the net package's dump of the links, and names the link
// it cannot find.
func TestIndex(t *testing.T) {
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Index("lo"); err != nil || got != ifi.Index {
		t.Errorf("Index(lo) = %d, %v; want %d", got, err, ifi.Index)
	}
	if _, err := Index("nosuch0"); err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("Index(nosuch0) = %v; want an error naming the link", err)
	}
}
