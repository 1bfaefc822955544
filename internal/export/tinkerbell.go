package export

import (
	"bytes"
	"fmt"
	"net"
	"strings"

	"gopkg.in/yaml.v3"
)

// Tinkerbell is a bare-metal machine that netboots ginit's linuxboot image
// as its Tinkerbell Hardware says: Smee, Tinkerbell's DHCP and iPXE
// server, hands the machine the iPXE script of netboot.ipxe.contents in
// place of HookOS, and the script loads ginit, which pulls its root from a
// registry (root=docker://) or installs it onto a disk (ginit.install=).
type Tinkerbell struct {
	Name      string // the Hardware's name
	Namespace string // tink-system when empty
	MAC       string // the interface Smee answers
	Hostname  string
	IP        string // address/prefix, e.g. 192.168.2.10/24; empty: Smee in proxy-DHCP mode
	Gateway   string
	UEFI      bool
	BaseURL   string // where vmlinuz and initramfs (the linuxboot image) are served
	Root      string // root=docker://Root
	Install   string // ginit.install=: the disk to install the image onto
	Append    string // more kernel parameters
}

// Tinkerbell's Hardware fields, named as tinkerbell.org/v1alpha1 names
// them (api/v1alpha1 hardware_types.go in Tinkerbell's repository).
type (
	tbHardware struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   tbMeta `yaml:"metadata"`
		Spec       tbSpec `yaml:"spec"`
	}
	tbMeta struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	}
	tbSpec struct {
		Interfaces []tbInterface `yaml:"interfaces"`
	}
	tbInterface struct {
		DHCP    tbDHCP    `yaml:"dhcp"`
		Netboot tbNetboot `yaml:"netboot"`
	}
	tbDHCP struct {
		MAC      string `yaml:"mac"`
		Hostname string `yaml:"hostname,omitempty"`
		Arch     string `yaml:"arch"`
		UEFI     bool   `yaml:"uefi"`
		IP       *tbIP  `yaml:"ip,omitempty"`
	}
	tbIP struct {
		Address string `yaml:"address"`
		Netmask string `yaml:"netmask"`
		Gateway string `yaml:"gateway,omitempty"`
	}
	tbNetboot struct {
		AllowPXE      bool   `yaml:"allowPXE"`
		AllowWorkflow bool   `yaml:"allowWorkflow"`
		IPXE          tbIPXE `yaml:"ipxe"`
	}
	tbIPXE struct {
		Contents string `yaml:"contents"`
	}
)

// KernelArgs is the command line the iPXE script gives ginit: both
// consoles (the BMC's serial-over-LAN is ttyS0), a kernel panic that
// reboots, root= and ginit.install=, then Append.
func (t Tinkerbell) KernelArgs() string {
	args := []string{"console=tty0", "console=ttyS0", "panic=-1"}
	if t.Root != "" {
		args = append(args, "root=docker://"+t.Root)
	}
	if t.Install != "" {
		args = append(args, "ginit.install="+t.Install)
	}
	if t.Append != "" {
		args = append(args, t.Append)
	}
	return strings.Join(args, " ")
}

// Script is the iPXE script that boots ginit.
func (t Tinkerbell) Script() string {
	base := strings.TrimSuffix(t.BaseURL, "/")
	return "#!ipxe\n" +
		"# ginit, pulling its root from a registry (root=docker://) or installing it (ginit.install=).\n" +
		"kernel " + base + "/" + NomadKernel + " " + t.KernelArgs() + "\n" +
		"initrd " + base + "/" + NomadInitrd + "\n" +
		"boot\n"
}

// Hardware returns the Hardware object as YAML.
func (t Tinkerbell) Hardware() ([]byte, error) {
	if err := checkName(t.Name); err != nil {
		return nil, err
	}
	mac, err := net.ParseMAC(t.MAC)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("export: MAC address %q: want six bytes such as 52:54:00:12:34:56", t.MAC)
	}
	if t.BaseURL == "" || t.Root == "" {
		return nil, fmt.Errorf("export: the Hardware needs the URL of the kernel and initramfs, and the image to boot")
	}
	ns := t.Namespace
	if ns == "" {
		ns = "tink-system"
	}
	dhcp := tbDHCP{MAC: mac.String(), Hostname: t.Hostname, Arch: "x86_64", UEFI: t.UEFI}
	if t.IP != "" {
		ip, ipnet, err := net.ParseCIDR(t.IP)
		if err != nil || ip.To4() == nil {
			return nil, fmt.Errorf("export: IP %q: want an IPv4 address/prefix such as 192.168.2.10/24", t.IP)
		}
		dhcp.IP = &tbIP{Address: ip.String(), Netmask: net.IP(ipnet.Mask).String(), Gateway: t.Gateway}
	}
	hw := tbHardware{
		APIVersion: "tinkerbell.org/v1alpha1",
		Kind:       "Hardware",
		Metadata:   tbMeta{Name: t.Name, Namespace: ns},
		Spec: tbSpec{Interfaces: []tbInterface{{
			DHCP: dhcp,
			// ginit is the whole job: no workflow, no HookOS.
			Netboot: tbNetboot{AllowPXE: true, AllowWorkflow: false, IPXE: tbIPXE{Contents: t.Script()}},
		}}},
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(hw); err != nil {
		return nil, fmt.Errorf("export: Hardware: %w", err)
	}
	return buf.Bytes(), enc.Close()
}
