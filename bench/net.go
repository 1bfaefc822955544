package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

var leaseLine = regexp.MustCompile(`ginit: eth0: DHCPv4 .* \((\d+) ms after the link appeared\)`)

// netTable times DHCP under QEMU's own server: from the moment ginit sees
// the link, right after its driver loaded, to the lease applied (address,
// routes, DNS), as ginit logs it; the median of o.boots boots.
func netTable(o options, work string) error {
	root := filepath.Join(work, "netroot")
	if err := goBuild(filepath.Join(root, "app/probe"), "./integration/testdata/probe"); err != nil {
		return err
	}
	disk := filepath.Join(work, "net.img")
	cmd := exec.Command("go", "run", "./cmds/oci2disk", "-q", "--entrypoint", "/app/probe args done", "dir:"+root, disk)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("oci2disk: %v\n%s", err, out)
	}
	vm := qemu.VM{Kernel: o.kernel, Initrd: filepath.Join(o.build, "minimal.cpio"), Disk: disk}
	var lease, workload []time.Duration
	for i := 0; i < o.boots; i++ {
		res, err := vm.Run(context.Background())
		if err != nil {
			return fmt.Errorf("DHCP boot: %v\n%s", err, res.Console)
		}
		m := leaseLine.FindStringSubmatch(res.Console)
		if m == nil {
			return fmt.Errorf("DHCP boot: no lease line on the console:\n%s", res.Console)
		}
		ms, _ := strconv.Atoi(m[1])
		lease = append(lease, time.Duration(ms)*time.Millisecond)
		if _, at := res.Phases(); at != nil {
			workload = append(workload, at["workload"])
		}
	}
	fmt.Printf("## DHCP under QEMU TCG (user networking, virtio-net): %d boots\n\n", o.boots)
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
	row("link appeared (driver loaded) to lease applied", lease)
	row("workload started, since kernel start", workload)
	fmt.Println()
	return nil
}
