package main

import (
	"flag"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

// guestFlags are run's flags that change the machine the workload sees,
// as docker run's do.
func guestFlags(fs *flag.FlagSet, g *vmrun.GuestOptions) {
	fs.Var((*list)(&g.DNS), "dns", "a name server for the VM's /etc/resolv.conf, replacing DHCP's (repeatable)")
	fs.Var((*list)(&g.AddHosts), "add-host", "NAME:IP added to the VM's /etc/hosts; IP host-gateway is the host (repeatable)")
	fs.Var((*list)(&g.Tmpfs), "tmpfs", "PATH[:OPTIONS]: a tmpfs at PATH, noexec,nosuid,nodev unless OPTIONS say otherwise (repeatable)")
	fs.BoolVar(&g.ReadOnly, "read-only", false, "mount the root read-only (/run, /tmp, volumes and tmpfs mounts stay writable)")
	fs.StringVar(&g.StopSignal, "stop-signal", "", "the signal that stops the workload, replacing the image's StopSignal")
	fs.Var((*list)(&g.Volumes), "v", "HOSTDIR:PATH[:ro] shares a host directory (virtiofs); NAME:PATH[:ro] mounts a named volume, made on first use (repeatable)")
	fs.Var((*list)(&g.Volumes), "volume", "same as -v")
	fs.Var((*list)(&g.Credentials), "credential", "NAME=VALUE: a systemd credential, through fw_cfg (repeatable)")
	fs.Var((*list)(&g.LoadCredentials), "load-credential", "NAME:PATH: a systemd credential read from a file (repeatable)")
}
