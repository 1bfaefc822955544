package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// netReport prints what the workload sees of the network: hostname, each
// link's addresses, the IPv4 routes and the files the resolver reads.
func netReport() {
	h, _ := os.Hostname()
	fmt.Printf("probe: hostname %s\n", h)
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			fmt.Printf("probe: addr %s %s\n", ifi.Name, a)
		}
		fmt.Printf("probe: mtu %s %d\n", ifi.Name, ifi.MTU)
	}
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			dst, gw, mask := hexIP(f[1]), hexIP(f[2]), hexIP(f[7])
			ones, _ := net.IPMask(mask.To4()).Size()
			r := fmt.Sprintf("%s/%d", dst, ones)
			if !gw.Equal(net.IPv4zero) {
				r += " via " + gw.String()
			}
			fmt.Printf("probe: route4 %s dev %s\n", r, f[0])
		}
	}
	for _, p := range []string{"/etc/resolv.conf", "/etc/hosts", "/etc/hostname"} {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Printf("probe: file %s: %v\n", p, err)
			continue
		}
		fmt.Printf("probe: file %s\n", p)
		for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			fmt.Printf("probe: | %s\n", line)
		}
	}
}

func hexIP(s string) net.IP {
	v, _ := strconv.ParseUint(s, 16, 32)
	ip := make(net.IP, 4)
	binary.LittleEndian.PutUint32(ip, uint32(v))
	return ip
}
