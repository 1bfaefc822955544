package main

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/blockdev"
	"github.com/ginit-dev/ginit/internal/bootcfg"
)

// obtainRoot mounts the root at newRoot and names where it came from. In
// ginit.mode=boot, or in auto mode when root= was not given and no
// container disk appears, it boots the machine's operating system instead.
// A non-nil end is how the boot ends instead of running a workload: a
// kexec, the reboot after an install, a stop request while looking.
func (s *system) obtainRoot(cfg bootcfg.Config, net network) (source string, end *ending, err error) {
	if cfg.Mode == bootcfg.BootOS {
		end, err := s.bootOS(cfg, nil)
		return "", end, err
	}
	if bootcfg.IsImageRef(cfg.Root) {
		return s.pullRoot(cfg, net)
	}
	dev, err := s.mountRoot(cfg)
	if err != nil && cfg.Mode == bootcfg.Auto && !cfg.RootGiven && errors.Is(err, os.ErrNotExist) {
		s.b.log.Infof("no container disk: %v; looking for an operating system to boot", err)
		end, err := s.bootOS(cfg, err)
		return "", end, err
	}
	return dev, nil, err
}

func (s *system) mountRoot(cfg bootcfg.Config) (string, error) {
	spec, err := blockdev.ParseSpec(cfg.Root)
	if err != nil {
		return "", err
	}
	dev, super, err := blockdev.Wait(spec, cfg.RootWait)
	if err != nil {
		return "", err
	}
	s.b.mark("rootfound")
	fstype := cfg.RootFSType
	if fstype == "" {
		fstype = super.Type
	}
	if fstype == "" {
		return "", fmt.Errorf("root device %s: unknown filesystem; give rootfstype=", dev)
	}
	var flags uintptr
	if cfg.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := s.mountNewRoot(dev, fstype, flags, cfg.RootFlags); err != nil {
		return "", err
	}
	s.b.mark("rootmounted")
	return dev, nil
}
