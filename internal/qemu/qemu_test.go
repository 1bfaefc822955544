package qemu

import (
	"strings"
	"testing"
)

// A machine gets a vsock device only when given a CID.
func TestVsockDevice(t *testing.T) {
	for _, tt := range []struct {
		machine Machine
		cid     uint32
		want    string
	}{
		{PC, 0, ""},
		{PC, 3, "-device vhost-vsock-pci,guest-cid=3"},
		{Q35, 1<<31 - 1, "-device vhost-vsock-pci,guest-cid=2147483647"},
		{MicroVM, 3, "-device vhost-vsock-device,guest-cid=3"},
	} {
		args := strings.Join(VM{Machine: tt.machine, Kernel: "k", Initrd: "i", VsockCID: tt.cid}.Args(), " ")
		if has := strings.Contains(args, "vhost-vsock"); has != (tt.want != "") || !strings.Contains(args, tt.want) {
			t.Errorf("VsockCID %d: args %q; want %q", tt.cid, args, tt.want)
		}
	}
}
