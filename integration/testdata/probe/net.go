package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// netReport prints what the workload sees of the network: hostname, each
// link's addresses (IPv6 with their state from /proc/net/if_inet6), the
// IPv4 routes and the files the resolver reads.
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
	inet6Report()
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

// waitInet6 waits until an IPv6 address beyond link-local is usable, as a
// workload that needs IPv6 waits for it: ginit starts the workload once
// IPv4 has its lease.
func waitInet6(limit time.Duration) {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/net/if_inet6")
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 6 || f[3] == "20" || f[3] == "10" {
				continue // link or host scope
			}
			flags, _ := strconv.ParseUint(f[4], 16, 8)
			if flags&0x08 == 0 && (flags&0x40 == 0 || flags&0x04 != 0) {
				return
			}
		}
	}
}

// inet6Report prints each IPv6 address as "probe: inet6 LINK ADDR/LEN
// SCOPE STATE", STATE being usable, tentative or dadfailed, as the kernel's
// flags say (an optimistic address is usable).
func inet6Report() {
	b, err := os.ReadFile("/proc/net/if_inet6")
	if err != nil {
		fmt.Printf("probe: inet6: %v\n", err)
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || len(f[0]) != 32 {
			continue
		}
		ip := make(net.IP, 16)
		for i := range ip {
			v, _ := strconv.ParseUint(f[0][2*i:2*i+2], 16, 8)
			ip[i] = byte(v)
		}
		plen, _ := strconv.ParseUint(f[2], 16, 8)
		scope, _ := strconv.ParseUint(f[3], 16, 8)
		flags, _ := strconv.ParseUint(f[4], 16, 8)
		sc := map[uint64]string{0: "global", 0x10: "host", 0x20: "link", 0x40: "site"}[scope]
		state := "usable"
		switch {
		case flags&0x08 != 0: // IFA_F_DADFAILED
			state = "dadfailed"
		case flags&0x40 != 0 && flags&0x04 == 0: // IFA_F_TENTATIVE, not IFA_F_OPTIMISTIC
			state = "tentative"
		}
		fmt.Printf("probe: inet6 %s %s/%d %s %s\n", f[5], ip, plen, sc, state)
	}
}
