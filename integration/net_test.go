package integration

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// netDisk is a root disk whose workload prints what it sees of the network.
func netDisk(t *testing.T, a Artifacts) string {
	t.Helper()
	root := t.TempDir()
	a.BuildProbe(t, filepath.Join(root, "app"))
	return a.MakeDisk(t, root)
}

var leaseLine = regexp.MustCompile(`ginit: eth0: DHCPv4 .* \((\d+) ms after the link appeared\)`)

// QEMU's DHCP server: the workload sees the lease's address, route, DNS,
// search domain and hostname, through /etc files that are not on the disk.
func TestNetworkDHCP(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := netDisk(t, a)
	res := a.Boot(t, VM{Disk: disk, Append: `entrypoint="/app/probe net"`, NetOptions: "hostname=leasedvm,dnssearch=example.test"})
	wantClean(t, res,
		"probe: addr eth0 10.0.2.15/24",
		"probe: route4 0.0.0.0/0 via 10.0.2.2 dev eth0",
		"probe: hostname leasedvm",
		"probe: file /etc/resolv.conf",
		"probe: | search example.test",
		"probe: | nameserver 10.0.2.3",
		"probe: | 10.0.2.15\tleasedvm",
		"probe: | leasedvm",
		"ginit: entrypoint exited with status 0",
	)
	if m := leaseLine.FindStringSubmatch(res.Console); m != nil {
		t.Logf("lease applied %s ms after the link appeared", m[1])
	} else {
		t.Errorf("no DHCPv4 lease line on the console")
	}
	// The disk has no /etc/resolv.conf of its own: the mount point made
	// for the generated one is empty.
	Fsck(t, disk)
	if got := DebugfsCat(t, disk, "/etc/resolv.conf"); got != "" {
		t.Errorf("/etc/resolv.conf on the disk = %q; want the empty mount point", got)
	}
}

var slaacLine = regexp.MustCompile(`ginit: eth0: IPv6 \S+ usable, by SLAAC \((\d+) ms after the link appeared\)`)

var raLine = regexp.MustCompile(`ginit: eth0: router advertisement .* \((\d+) ms after the link appeared\)`)

// QEMU's user network advertises fec0::/64: the workload starts with its
// IPv4 lease, without waiting for IPv6, and a workload that waits for it
// sees a usable SLAAC address in it (not tentative).
func TestNetworkIPv6(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := netDisk(t, a)
	res := a.Boot(t, VM{Disk: disk, Append: `entrypoint="/app/probe net6"`, NetOptions: "ipv4=on,ipv6=on"})
	wantClean(t, res,
		"probe: addr eth0 10.0.2.15/24",
		"probe: inet6 eth0 fe80::5054:ff:fe12:3456/64 link usable",
		"probe: inet6 eth0 fec0::5054:ff:fe12:3456/64 site usable",
		"ginit: entrypoint exited with status 0",
	)
	if m := raLine.FindStringSubmatch(res.Console); m != nil {
		t.Logf("router advertisement %s ms after the link appeared", m[1])
	} else {
		t.Errorf("no router advertisement line on the console")
	}
	if m := slaacLine.FindStringSubmatch(res.Console); m != nil {
		t.Logf("SLAAC address usable %s ms after the link appeared", m[1])
	} else {
		t.Errorf("no line saying the SLAAC address is usable on the console")
	}
}

// A machine without a network card reaches its workload without waiting,
// however long ginit.netwait allows.
func TestNoNICNoWait(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := netDisk(t, a)
	res := a.Boot(t, VM{Disk: disk, Append: `ginit.netwait=30s entrypoint="/app/probe net"`, NoNet: true})
	wantClean(t, res, "probe: hostname localhost", "probe: | 127.0.0.1\tlocalhost", "ginit: entrypoint exited with status 0")
	if strings.Contains(res.Console, "no DHCP lease") {
		t.Errorf("ginit waited for a lease without a network card")
	}
	_, at := res.Phases()
	if at == nil {
		t.Fatalf("no boot timing line:\n%s", res.Console)
	}
	if wait := at["network"] - at["rootmounted"]; wait > 2*time.Second {
		t.Errorf("%v between the root mounted and the network ready without a NIC; want no wait", wait)
	}
}

// ip= in the kernel's static syntax: no DHCP, the address, route, DNS and
// hostname it gives.
func TestStaticIP(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := netDisk(t, a)
	res := a.Boot(t, VM{Disk: disk, Append: `ip=10.0.2.15::10.0.2.2:255.255.255.0:staticvm:eth0:off:10.0.2.3 entrypoint="/app/probe net"`})
	wantClean(t, res,
		"probe: addr eth0 10.0.2.15/24",
		"probe: route4 0.0.0.0/0 via 10.0.2.2 dev eth0",
		"probe: hostname staticvm",
		"probe: | nameserver 10.0.2.3",
		"probe: | 10.0.2.15\tstaticvm",
		"ginit: entrypoint exited with status 0",
	)
	if strings.Contains(res.Console, "DHCPv4") {
		t.Errorf("DHCP ran despite a static ip=")
	}
}

// A root mounted read-only from the start (ro) still gets the lease's
// resolv.conf, hosts and hostname: the disk carries their mount points,
// so ginit need not make them on it.
func TestReadOnlyRootNetworkFiles(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := netDisk(t, a)
	res := a.Boot(t, VM{Disk: disk, Append: `ro entrypoint="/app/probe net"`, NetOptions: "hostname=rovm"})
	wantClean(t, res,
		"probe: file /etc/resolv.conf",
		"probe: | nameserver 10.0.2.3",
		"probe: | 10.0.2.15\trovm",
		"ginit: entrypoint exited with status 0",
	)
	if strings.Contains(res.Console, "read-only file system") {
		t.Errorf("console shows a write to the read-only root")
	}
}
