package netconf

// Root tests against real servers: dnsmasq serves DHCPv4, DHCPv6 and router
// advertisements in a network namespace of the test's own, reached through
// a veth pair from a second namespace where a child test process (the test
// binary again, with its own UTS namespace for the hostname) runs the
// network code and checks the kernel's view. Every address is in a
// namespace the test made.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/rtnl"
	"github.com/ginit-dev/ginit/internal/testenv"
)

const childEnv = "GINIT_NETNS_CHILD"

func needRoot(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t, "network namespaces with DHCP servers and router advertisements")
	testenv.NeedTools(t, "ip", "dnsmasq", "unshare", "radvd")
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNetns makes a named network namespace, removed when the test ends.
func newNetns(t *testing.T, suffix string) string {
	name := fmt.Sprintf("ginit-t%d-%s", os.Getpid(), suffix)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	// No duplicate address detection: addresses are usable at once.
	run(t, "ip", "netns", "exec", name, "sh", "-c",
		"echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad && echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad")
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

type pair struct{ srv, cli string }

// newPair makes a server and a client namespace, a veth from the server's
// vs to the client's eth0 (MAC 52:54:00:12:34:56), and the server's
// addresses 192.0.2.1/24 and 2001:db8:1::1/64 on vs.
func newPair(t *testing.T, name string) pair {
	p := pair{srv: newNetns(t, name+"-s"), cli: newNetns(t, name+"-c")}
	run(t, "ip", "-n", p.srv, "link", "add", "vs", "type", "veth", "peer", "name", "eth0", "netns", p.cli)
	run(t, "ip", "-n", p.cli, "link", "set", "eth0", "address", "52:54:00:12:34:56")
	run(t, "ip", "-n", p.srv, "addr", "add", "192.0.2.1/24", "dev", "vs")
	run(t, "ip", "-n", p.srv, "addr", "add", "2001:db8:1::1/64", "dev", "vs")
	run(t, "ip", "-n", p.srv, "link", "set", "vs", "up")
	return p
}

// dnsmasq runs a DHCP server on iface in ns; its log is returned by the
// function, once it has been stopped.
func dnsmasq(t *testing.T, ns, iface string, args ...string) func() string {
	dir := t.TempDir()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--port=0", "--no-ping", "--no-resolv", "--no-hosts", "--log-dhcp", "--log-facility=-", "--pid-file=",
		"--dhcp-leasefile=" + filepath.Join(dir, "leases"), "--interface=" + iface, "--bind-interfaces"}, args...)...)
	var out strings.Builder
	var mu sync.Mutex
	w := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(b) })
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("dnsmasq: %v", err)
	}
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			cmd.Process.Kill()
			cmd.Wait()
		}
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	t.Cleanup(func() { stop() })
	// Ready once it has bound its sockets and said so.
	waitFor(t, 10*time.Second, "dnsmasq start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(out.String(), "DHCP, IP range")
	})
	time.Sleep(50 * time.Millisecond)
	return stop
}

// radvd runs radvd with conf in ns until the test ends.
func radvd(t *testing.T, ns, conf string) {
	dir := t.TempDir()
	path := filepath.Join(dir, "radvd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")
	cmd := exec.Command("ip", "netns", "exec", ns, "radvd", "--nodaemon", "--config", path,
		"--pidfile", filepath.Join(dir, "radvd.pid"), "--logmethod", "stderr", "--username", "root")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("radvd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("radvd:\n%s", out.String())
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// child runs scenario in the client namespace and returns its output.
func child(t *testing.T, p pair, scenario string, env ...string) string {
	uts, err := os.Readlink("/proc/self/ns/uts")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", p.cli, "unshare", "--uts", "--",
		os.Args[0], "-test.run=^TestNetnsChild$", "-test.v", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), childEnv+"="+scenario, "GINIT_PARENT_UTS="+uts, "GINIT_SRV_NS="+p.srv, "GINIT_CLI_NS="+p.cli)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNetnsChild") {
		t.Fatalf("child %s: %v\n%s", scenario, err, out)
	}
	t.Logf("child %s:\n%s", scenario, out)
	return string(out)
}

func TestDnsmasq(t *testing.T) {
	needRoot(t)
	t.Run("dhcp", func(t *testing.T) {
		t.Parallel()
		p := newPair(t, "d")
		// .50-.59: every address dnsmasq picks starts with 192.0.2.5,
		// which the checks below look for.
		stop := dnsmasq(t, p.srv, "vs",
			"--dhcp-range=192.0.2.50,192.0.2.59,255.255.255.0,2m",
			"--dhcp-option=option:router,192.0.2.1",
			"--dhcp-option=121,198.51.100.0/24,192.0.2.9,0.0.0.0/0,192.0.2.254",
			"--dhcp-option=option:mtu,1400",
			"--dhcp-option=option:dns-server,192.0.2.53",
			"--dhcp-option=option:domain-search,a.example,example",
			"--dhcp-option=option:T1,2",
			"--dhcp-option=option:T2,4",
			"--dhcp-host=52:54:00:12:34:56,leased-host",
			"--dhcp-rapid-commit",
			"--enable-ra",
			"--ra-param=vs,4",
			"--dhcp-range=2001:db8:1::100,2001:db8:1::1ff,slaac,64,2m",
			"--dhcp-option=option6:dns-server,[2001:db8:1::53]",
			"--dhcp-option=option6:domain-search,v6.example",
		)
		child(t, p, "dhcp")
		log := stop()
		for _, want := range []string{"DHCPDISCOVER(vs)", "DHCPRELEASE(vs)", "SOLICIT(vs)", "RELEASE(vs)"} {
			if !strings.Contains(log, want) {
				t.Errorf("dnsmasq log lacks %q:\n%s", want, log)
			}
		}
		// Rapid commit: no OFFER, no REQUEST before the first ACK.
		if strings.Contains(log, "DHCPOFFER") {
			t.Errorf("dnsmasq offered despite rapid commit:\n%s", log)
		}
	})
	t.Run("radvd", func(t *testing.T) {
		t.Parallel()
		p := newPair(t, "r")
		dnsmasq(t, p.srv, "vs", "--dhcp-range=192.0.2.50,192.0.2.59,255.255.255.0,2m")
		radvd(t, p.srv, `interface vs {
	AdvSendAdvert on;
	MinRtrAdvInterval 60;
	MaxRtrAdvInterval 120;
	prefix 2001:db8:1::/64 { AdvOnLink on; AdvAutonomous on; };
	RDNSS 2001:db8:1::53 {};
};
`)
		child(t, p, "radvd")
	})
	t.Run("dhcp6", func(t *testing.T) {
		t.Parallel()
		p := newPair(t, "6")
		// Managed: the advertisement sends the machine to DHCPv6 for its
		// address; no SLAAC.
		dnsmasq(t, p.srv, "vs", "--dhcp-range=192.0.2.50,192.0.2.59,255.255.255.0,2m",
			"--enable-ra", "--dhcp-range=2001:db8:1::100,2001:db8:1::1ff,64,2m")
		child(t, p, "dhcp6")
	})
	t.Run("silent", func(t *testing.T) {
		t.Parallel()
		child(t, newPair(t, "s"), "silent")
	})
	t.Run("static", func(t *testing.T) {
		t.Parallel()
		child(t, newPair(t, "st"), "static")
	})
	t.Run("late", func(t *testing.T) {
		t.Parallel()
		p := pair{srv: newNetns(t, "l-s"), cli: newNetns(t, "l-c")}
		// Both ends start in the server's namespace; the child moves eth1
		// into its own once its network code runs.
		run(t, "ip", "-n", p.srv, "link", "add", "vl", "type", "veth", "peer", "name", "eth1")
		run(t, "ip", "-n", p.srv, "addr", "add", "192.0.2.1/24", "dev", "vl")
		run(t, "ip", "-n", p.srv, "link", "set", "vl", "up")
		dnsmasq(t, p.srv, "vl", "--dhcp-range=192.0.2.50,192.0.2.59,255.255.255.0,2m", "--dhcp-option=option:router,192.0.2.1")
		child(t, p, "late")
	})
}

// testLog collects and prints what the network code logs.
type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) add(level, format string, args ...any) {
	s := level + ": " + fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	fmt.Printf("%s %s\n", time.Now().Format("15:04:05.000"), s)
}

func (l *testLog) Infof(f string, a ...any)  { l.add("info", f, a...) }
func (l *testLog) Warnf(f string, a ...any)  { l.add("warn", f, a...) }
func (l *testLog) Debugf(f string, a ...any) { l.add("debug", f, a...) }

func (l *testLog) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addrs lists the link's addresses as "a/len".
func addrs(t *testing.T, name string) []string {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	as, err := ifi.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func hasPrefixAddr(as []string, prefix string) bool {
	for _, a := range as {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// routes4 lists the IPv4 routes as "dst/len via gw dev" from /proc/net/route.
func routes4(t *testing.T) []string {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		t.Fatal(err)
	}
	hexIP := func(s string) netip.Addr {
		v, _ := strconv.ParseUint(s, 16, 32)
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], uint32(v))
		return netip.AddrFrom4(a)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		m := hexIP(f[7]).As4()
		bits := 0
		for _, x := range m {
			for ; x&0x80 != 0; x <<= 1 {
				bits++
			}
		}
		r := fmt.Sprintf("%v/%d", hexIP(f[1]), bits)
		if gw := hexIP(f[2]); !gw.IsUnspecified() {
			r += " via " + gw.String()
		}
		out = append(out, r+" dev "+f[0])
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func readText(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestNetnsChild is the client side of TestDnsmasq; it runs only as its
// child, in the client namespace.
func TestNetnsChild(t *testing.T) {
	scenario := os.Getenv(childEnv)
	if scenario == "" {
		t.Skip("run by TestDnsmasq in a namespace of its own")
	}
	// Never touch the machine's hostname: only in a UTS namespace of our own.
	if uts, _ := os.Readlink("/proc/self/ns/uts"); uts == os.Getenv("GINIT_PARENT_UTS") || uts == "" {
		t.Fatalf("child shares the parent's UTS namespace (%s)", uts)
	}
	if err := unix.Sethostname([]byte("(none)")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := &testLog{}
	o := defaultOptions()
	o.dir = dir
	o.wired = func(name string) bool { return strings.HasPrefix(name, "eth") }

	switch scenario {
	case "dhcp":
		start := time.Now()
		n := up(Params{}, log, o)
		if !n.WaitFirst(10 * time.Second) {
			t.Fatalf("WaitFirst = false; want a lease")
		}
		t.Logf("first lease after %v", time.Since(start))
		// The first lease may be the DHCPv6 one, and the DHCPv4 lease's
		// address is in place before its routes, hostname and files:
		// wait for the last of them, the files (written in no set order).
		waitFor(t, 5*time.Second, "the DHCPv4 lease applied", func() bool {
			has := func(name, sub string) bool {
				b, _ := os.ReadFile(filepath.Join(dir, name))
				return strings.Contains(string(b), sub)
			}
			return log.has("eth0: DHCPv4 192.0.2.5") && has("hostname", "leased-host\n") &&
				has("hosts", "\tleased-host\n") && has("resolv.conf", "nameserver 192.0.2.53\n")
		})
		as := addrs(t, "eth0")
		if !hasPrefixAddr(as, "192.0.2.5") {
			t.Errorf("eth0 addresses %v; want one in 192.0.2.50-59/24", as)
		}
		rs := routes4(t)
		// Option 121 wins over the Router option.
		for _, want := range []string{"0.0.0.0/0 via 192.0.2.254 dev eth0", "198.51.100.0/24 via 192.0.2.9 dev eth0"} {
			if !contains(rs, want) {
				t.Errorf("routes %v lack %q", rs, want)
			}
		}
		if contains(rs, "0.0.0.0/0 via 192.0.2.1 dev eth0") {
			t.Errorf("routes %v: default via the Router option despite option 121", rs)
		}
		if ifi, _ := net.InterfaceByName("eth0"); ifi.MTU != 1400 {
			t.Errorf("eth0 MTU %d; want 1400", ifi.MTU)
		}
		if h, _ := os.Hostname(); h != "leased-host" {
			t.Errorf("hostname %q; want leased-host", h)
		}
		if h := readText(t, filepath.Join(dir, "hostname")); h != "leased-host\n" {
			t.Errorf("hostname file %q; want leased-host", h)
		}
		if hosts := readText(t, filepath.Join(dir, "hosts")); !strings.Contains(hosts, "192.0.2.5") || !strings.Contains(hosts, "\tleased-host\n") {
			t.Errorf("hosts lacks the lease's address and name:\n%s", hosts)
		}
		// IPv6: SLAAC by the kernel, an address by DHCPv6, DNS from both.
		waitFor(t, 10*time.Second, "IPv6 addresses and DNS", func() bool {
			as := addrs(t, "eth0")
			rc := readText(t, filepath.Join(dir, "resolv.conf"))
			return hasPrefixAddr(as, "2001:db8:1:0:5054:ff:fe12:3456/64") && hasPrefixAddr(as, "2001:db8:1::1") &&
				strings.Contains(rc, "nameserver 2001:db8:1::53")
		})
		t.Logf("eth0: %v", addrs(t, "eth0"))
		rc := readText(t, filepath.Join(dir, "resolv.conf"))
		if !strings.Contains(rc, "search a.example example v6.example\n") || !strings.Contains(rc, "nameserver 192.0.2.53\nnameserver 2001:db8:1::53\n") {
			t.Errorf("resolv.conf:\n%s\nwant search a.example example v6.example, nameservers 192.0.2.53 then 2001:db8:1::53", rc)
		}
		if r6 := readText(t, "/proc/net/ipv6_route"); !strings.Contains(r6, "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe80") {
			t.Errorf("no IPv6 default route via a link-local router:\n%s", r6)
		}
		// T1 is 2 s: a renewal.
		waitFor(t, 8*time.Second, "DHCPv4 renewal", func() bool { return log.has("DHCPv4 lease renewed") })
		// The link goes away and comes back: the leases are asked for again
		// and kept.
		srv := os.Getenv("GINIT_SRV_NS")
		run(t, "ip", "-n", srv, "link", "set", "vs", "down")
		waitFor(t, 5*time.Second, "carrier loss", func() bool { return log.has("eth0: carrier lost") })
		run(t, "ip", "-n", srv, "link", "set", "vs", "up")
		waitFor(t, 5*time.Second, "carrier back", func() bool { return log.has("eth0: carrier back") })
		time.Sleep(500 * time.Millisecond)
		if as := addrs(t, "eth0"); !hasPrefixAddr(as, "192.0.2.5") || log.has("lease 192.0.2") {
			t.Errorf("after the carrier came back: addresses %v; want the lease kept", as)
		}
		// Release on Close: the addresses go.
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		n.Close(cctx)
		ccancel()
		if as := addrs(t, "eth0"); hasPrefixAddr(as, "192.0.2.5") || hasPrefixAddr(as, "2001:db8:1::1") {
			t.Errorf("eth0 addresses after Close %v; want the leased ones gone", as)
		}
	case "radvd":
		// Duplicate address detection on, as on a real link: the SLAAC
		// address is optimistic, so usable as soon as it is added.
		slaac := func(p netip.Prefix) bool { return p.String() == "2001:db8:1:0:5054:ff:fe12:3456/64" }
		n, took := upWithDAD(t, log, o, slaac)
		if a, ok := usable6(t, slaac); !ok {
			t.Errorf("eth0 has %+v; want 2001:db8:1:0:5054:ff:fe12:3456/64 usable", a)
		}
		if !hasPrefixAddr(addrs(t, "eth0"), "192.0.2.5") {
			t.Errorf("eth0 addresses %v; want the DHCPv4 lease too", addrs(t, "eth0"))
		}
		waitFor(t, time.Second, "the log line saying the SLAAC address is usable", func() bool {
			return log.has("eth0: IPv6 2001:db8:1:0:5054:ff:fe12:3456/64 usable, by SLAAC")
		})
		// Detection takes a second; optimistic addresses need not wait for it.
		if took > 2*time.Second {
			t.Errorf("the SLAAC address took %v; want the router's answer and the address well within 2 s", took)
		}
		if rc := readText(t, filepath.Join(dir, "resolv.conf")); !strings.Contains(rc, "nameserver 2001:db8:1::53\n") {
			t.Errorf("resolv.conf:\n%s\nwant the RDNSS server 2001:db8:1::53", rc)
		}
		n.Close(context.Background())
	case "dhcp6":
		leased := func(p netip.Prefix) bool {
			return p.Bits() == 128 && netip.MustParsePrefix("2001:db8:1::/64").Contains(p.Addr())
		}
		n, took := upWithDAD(t, log, o, leased)
		if a, ok := usable6(t, leased); !ok {
			t.Errorf("eth0 has %+v; want a usable DHCPv6 address in 2001:db8:1::/64", a)
		}
		waitFor(t, time.Second, "the log line saying the DHCPv6 address is usable", func() bool { return log.has("usable, by DHCPv6") })
		if took > 2*time.Second {
			t.Errorf("the DHCPv6 address took %v; want it well within 2 s", took)
		}
		n.Close(context.Background())
	case "silent":
		// A peer that never answers: Up returns at once, the wait is bounded.
		start := time.Now()
		n := up(Params{}, log, o)
		if d := time.Since(start); d > 300*time.Millisecond {
			t.Errorf("Up took %v; want it not to wait", d)
		}
		start = time.Now()
		if n.WaitFirst(time.Second) {
			t.Errorf("WaitFirst = true without a server")
		}
		if d := time.Since(start); d < time.Second || d > 1500*time.Millisecond {
			t.Errorf("WaitFirst(1s) took %v", d)
		}
		start = time.Now()
		n.Close(context.Background())
		if d := time.Since(start); d > time.Second {
			t.Errorf("Close took %v", d)
		}
	case "static":
		n := up(Params{IP: []string{"192.0.2.77::192.0.2.1:255.255.255.0:statichost:eth0:none:192.0.2.53"}}, log, o)
		if !n.WaitFirst(0) {
			t.Errorf("WaitFirst(0) = false with a static address")
		}
		if as := addrs(t, "eth0"); !contains(as, "192.0.2.77/24") {
			t.Errorf("eth0 addresses %v; want 192.0.2.77/24", as)
		}
		if rs := routes4(t); !contains(rs, "0.0.0.0/0 via 192.0.2.1 dev eth0") {
			t.Errorf("routes %v; want default via 192.0.2.1", rs)
		}
		if h, _ := os.Hostname(); h != "statichost" {
			t.Errorf("hostname %q; want statichost", h)
		}
		if rc := readText(t, filepath.Join(dir, "resolv.conf")); !strings.Contains(rc, "nameserver 192.0.2.53\n") {
			t.Errorf("resolv.conf:\n%s\nwant nameserver 192.0.2.53", rc)
		}
		if hosts := readText(t, filepath.Join(dir, "hosts")); !strings.Contains(hosts, "192.0.2.77\tstatichost\n") {
			t.Errorf("hosts:\n%s\nwant 192.0.2.77 statichost", hosts)
		}
		n.Close(context.Background())
		testIntoRoot(t, dir, log)
	case "late":
		n := up(Params{}, log, o)
		if !n.WaitFirst(5 * time.Second) {
			t.Errorf("WaitFirst = false with no link at all; want true at once")
		}
		// The link appears now, as when its driver loads late.
		run(t, "ip", "-n", os.Getenv("GINIT_SRV_NS"), "link", "set", "eth1", "netns", os.Getenv("GINIT_CLI_NS"))
		waitFor(t, 10*time.Second, "lease on the late link", func() bool {
			_, err := net.InterfaceByName("eth1")
			return err == nil && hasPrefixAddr(addrs(t, "eth1"), "192.0.2.5")
		})
		if rs := routes4(t); !contains(rs, "0.0.0.0/0 via 192.0.2.1 dev eth1") {
			t.Errorf("routes %v; want default via 192.0.2.1 on eth1", rs)
		}
		n.Close(context.Background())
	default:
		t.Fatalf("unknown scenario %q", scenario)
	}
}

// upWithDAD brings the network up with duplicate address detection on
// eth0, as on a real link, waits for the first lease and then for an IPv6
// address that want6 accepts to be usable, which WaitFirst does not wait
// for, and says how long from Up that took.
func upWithDAD(t *testing.T, log *testLog, o options, want6 func(netip.Prefix) bool) (*Network, time.Duration) {
	run(t, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/eth0/accept_dad")
	start := time.Now()
	n := up(Params{}, log, o)
	if !n.WaitFirst(10 * time.Second) {
		t.Fatalf("WaitFirst = false; want a lease")
	}
	t.Logf("WaitFirst returned after %v", time.Since(start))
	for time.Since(start) < 10*time.Second {
		if _, ok := usable6(t, want6); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("IPv6 usable after %v", took)
	return n, took
}

// usable6 says whether eth0 has a usable IPv6 address that want accepts,
// and returns its addresses.
func usable6(t *testing.T, want func(netip.Prefix) bool) ([]rtnl.LinkAddr, bool) {
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	as, err := rtnl.Addrs6(eth0.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if want(a.Prefix) {
			if a.Usable() {
				return as, true
			}
		}
	}
	return as, false
}

// testIntoRoot runs in the child, whose mount namespace is its own: the
// root's files are covered, not changed.
func testIntoRoot(t *testing.T, dir string, log Logger) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("nameserver 9.9.9.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink to a file that is not there, as systemd's images have.
	if err := os.Symlink("../run/gen/hosts", filepath.Join(root, "etc/hosts")); err != nil {
		t.Fatal(err)
	}
	intoRoot(root, dir, log)
	for _, name := range []string{"resolv.conf", "hosts", "hostname"} {
		want := readText(t, filepath.Join(dir, name))
		if got := readText(t, filepath.Join(root, "etc", name)); got != want {
			t.Errorf("root's /etc/%s = %q; want the generated %q", name, got, want)
		}
	}
	// A change under /run/ginit shows through, as after a renewal.
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 192.0.2.99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, filepath.Join(root, "etc/resolv.conf")); got != "nameserver 192.0.2.99\n" {
		t.Errorf("root's resolv.conf after an update = %q", got)
	}
	for _, p := range []string{"etc/resolv.conf", "run/gen/hosts", "etc/hostname"} {
		if err := unix.Unmount(filepath.Join(root, p), 0); err != nil {
			t.Errorf("unmount %s: %v", p, err)
		}
	}
	if got := readText(t, filepath.Join(root, "etc/resolv.conf")); got != "nameserver 9.9.9.9\n" {
		t.Errorf("the root's own resolv.conf = %q after unmounting; want it unchanged", got)
	}
	if fi, err := os.Lstat(filepath.Join(root, "etc/hosts")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the root's /etc/hosts symlink was replaced: %v %v", fi, err)
	}
}
