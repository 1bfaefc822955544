package main

import (
	"context"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

var netOnly = flag.Bool("net-only", false, "print only the DHCP and IPv6 table (needs build/minimal.cpio)")

var (
	leaseLine = regexp.MustCompile(`ginit: eth0: DHCPv4 .* \((\d+) ms after the link appeared\)`)
	raLine    = regexp.MustCompile(`ginit: eth0: router advertisement .* \((\d+) ms after the link appeared\)`)
	slaacLine = regexp.MustCompile(`ginit: eth0: IPv6 \S+ usable, by SLAAC \((\d+) ms after the link appeared\)`)
	// What the workload sees at its start: a usable address in QEMU's
	// fec0::/64.
	probeV6 = regexp.MustCompile(`probe: inet6 eth0 fec0::\S+ \w+ usable`)
)

// netTable times DHCP and IPv6 under QEMU's user network (DHCPv4 and
// router advertisements of fec0::/64): from the moment ginit sees the link,
// right after its driver loaded, to the lease applied (address, routes,
// DNS), to the router's advertisement, and to the SLAAC address usable
// (not tentative), as ginit logs them; the median of o.boots boots. The
// workload prints its addresses at its start, and the last row counts the
// boots where it saw the IPv6 address usable.
func netTable(o options, work string) error {
	root := filepath.Join(work, "netroot")
	if err := goBuild(filepath.Join(root, "app/probe"), "./integration/testdata/probe"); err != nil {
		return err
	}
	disk := filepath.Join(work, "net.img")
	cmd := exec.Command("go", "run", "./cmds/oci2disk", "-q", "--entrypoint", "/app/probe net", "dir:"+root, disk)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("oci2disk: %v\n%s", err, out)
	}
	vm := qemu.VM{Kernel: o.kernel, Initrd: filepath.Join(o.build, "minimal.cpio"), Disk: disk}
	var lease, ra, slaac, workload []time.Duration
	sawV6 := 0
	for i := 0; i < o.boots; i++ {
		res, err := vm.Run(context.Background())
		if err != nil {
			return fmt.Errorf("DHCP boot: %v\n%s", err, res.Console)
		}
		ms := func(re *regexp.Regexp, into *[]time.Duration) bool {
			m := re.FindStringSubmatch(res.Console)
			if m == nil {
				return false
			}
			v, _ := strconv.Atoi(m[1])
			*into = append(*into, time.Duration(v)*time.Millisecond)
			return true
		}
		if !ms(leaseLine, &lease) {
			return fmt.Errorf("DHCP boot: no lease line on the console:\n%s", res.Console)
		}
		ms(raLine, &ra)
		ms(slaacLine, &slaac)
		if probeV6.MatchString(res.Console) {
			sawV6++
		}
		if _, at := res.Phases(); at != nil {
			workload = append(workload, at["workload"])
		}
	}
	fmt.Printf("## DHCP and IPv6 under QEMU TCG (user networking, virtio-net): %d boots\n\n", o.boots)
	fmt.Println("| row | median | min | max |")
	fmt.Println("|---|---:|---:|---:|")
	row := func(name string, d []time.Duration) {
		if len(d) == 0 {
			return
		}
		lo, hi := d[0], d[0]
		for _, x := range d {
			lo, hi = min(lo, x), max(hi, x)
		}
		fmt.Printf("| %s | %d ms | %d ms | %d ms |\n", name, median(d).Milliseconds(), lo.Milliseconds(), hi.Milliseconds())
	}
	row("link appeared (driver loaded) to DHCPv4 lease applied", lease)
	row("link appeared to router advertisement", ra)
	row("link appeared to SLAAC address usable", slaac)
	row("workload started, since kernel start", workload)
	fmt.Printf("| workload saw a usable IPv6 address at its start | %d of %d boots | | |\n", sawV6, o.boots)
	fmt.Println()
	return nil
}
