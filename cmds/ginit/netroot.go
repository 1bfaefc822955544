package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/blockdev"
	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/netconf"
	"github.com/ginit-dev/ginit/internal/reaper"
	"github.com/ginit-dev/ginit/internal/workload"
)

// ocipullPath pulls an image at boot. It is a command of its own, not part
// of ginit, so that the registry client (HTTP, TLS, the image formats) is
// carried only by the images that boot diskless (linuxboot, debug) and not
// by minimal.
const ocipullPath = "/bbin/ocipull"

// pullRoot makes the root from the image root= names (docker://REF,
// oci:URL): pulled into a tmpfs of ginit.rootsize, or, with ginit.install=,
// onto that disk, which the machine then reboots into. An install disk that
// already holds the same image is mounted as it is.
func (b *boot) pullRoot(network *netconf.Network) (string, error) {
	ref := b.cfg.Root
	if _, err := os.Stat(ocipullPath); err != nil {
		return "", fmt.Errorf("root=%s: this image cannot pull images at boot (no %s; the linuxboot and debug images have it): %w", ref, ocipullPath, err)
	}
	if b.cfg.Install != "" {
		if dev, ok := b.mountInstalled(); ok {
			return dev, nil
		}
	}
	if network == nil {
		return "", fmt.Errorf("root=%s needs the network, and there is no network link to configure", ref)
	}
	wait := max(b.cfg.NetWait, b.cfg.RootWait)
	if !network.WaitFirst(wait) {
		return "", fmt.Errorf("root=%s: no network lease within %v", ref, wait)
	}
	b.mark("rootfound")
	// The resolver reads /etc/resolv.conf; the leases' DNS servers are in
	// ginit's own copy.
	if err := os.Symlink(netconf.ResolvConf, "/etc/resolv.conf"); err != nil && !errors.Is(err, fs.ErrExist) {
		b.log.Warnf("DNS for the pull: %v", err)
	}

	if b.cfg.Install != "" {
		b.log.Infof("installing %s onto %s", ref, b.cfg.Install)
		if err := b.runOcipull("-install", b.cfg.Install, ref); err != nil {
			return "", fmt.Errorf("install %s onto %s: %w", ref, b.cfg.Install, err)
		}
		b.log.Infof("installed %s onto %s; rebooting into it", ref, b.cfg.Install)
		b.end(bootcfg.Reboot, 0)
	}

	// noatime: the extraction keeps its bookkeeping in the atimes.
	if err := b.mountNewRoot("tmpfs", "tmpfs", unix.MS_NOATIME, "mode=0755,size="+b.cfg.RootSize); err != nil {
		return "", err
	}
	b.log.Infof("pulling %s into a tmpfs root (size=%s)", ref, b.cfg.RootSize)
	if err := b.runOcipull(ref, newRoot); err != nil {
		return "", fmt.Errorf("root=%s: %w", ref, err)
	}
	b.mark("rootmounted")
	return "tmpfs holding " + ref, nil
}

// mountInstalled mounts the install disk as the root when it already holds
// the image root= names, as it does on the boot after an install.
func (b *boot) mountInstalled() (string, bool) {
	spec, err := blockdev.ParseSpec(b.cfg.Install)
	if err != nil {
		return "", false
	}
	dev, super, err := blockdev.Wait(spec, b.cfg.RootWait)
	if err != nil {
		// An empty disk has no filesystem yet: the usual first install.
		if !errors.Is(err, blockdev.ErrUnknownFS) {
			b.log.Warnf("ginit.install=%s: %v", b.cfg.Install, err)
		}
		return "", false
	}
	if super.Label != bootcfg.DefaultRootLabel {
		return "", false
	}
	if err := b.mountNewRoot(dev, super.Type, 0, ""); err != nil {
		b.log.Warnf("ginit.install=%s: %v; installing again", b.cfg.Install, err)
		return "", false
	}
	src, err := workload.ReadSource(newRoot)
	if err == nil && src.Source == b.cfg.Root {
		b.mark("rootmounted")
		b.log.Infof("%s already holds %s (%s); booting it", dev, src.Source, src.Digest)
		return dev, true
	}
	if err == nil {
		b.log.Infof("%s holds %s, not %s: installing over it", dev, src.Source, b.cfg.Root)
	} else {
		b.log.Infof("%s holds a root disk that was not installed from %s: installing over it", dev, b.cfg.Root)
	}
	if err := unix.Unmount(newRoot, 0); err != nil {
		b.log.Warnf("unmount %s: %v", newRoot, err)
	} else {
		b.mounted = false
	}
	return "", false
}

// runOcipull runs ocipull with args, its output on the console, and waits.
func (b *boot) runOcipull(args ...string) error {
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{"PATH=/bbin", "HOME=/"},
		Files: []uintptr{0, 1, 2},
	}
	_, wait, err := b.reaper.Start(ocipullPath, append([]string{"ocipull"}, args...), attr)
	if err != nil {
		return fmt.Errorf("start %s: %w", ocipullPath, err)
	}
	if code := reaper.ExitCode(<-wait); code != 0 {
		return fmt.Errorf("%s exited with status %d", ocipullPath, code)
	}
	return nil
}
