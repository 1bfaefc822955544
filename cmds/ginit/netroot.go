package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/blockdev"
	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/netconf"
	"github.com/ginit-dev/ginit/internal/reaper"
	"github.com/ginit-dev/ginit/internal/shutdown"
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
func (s *system) pullRoot(cfg bootcfg.Config, net network) (string, *ending, error) {
	ref := cfg.Root
	if _, err := os.Stat(ocipullPath); err != nil {
		return "", nil, fmt.Errorf("root=%s: this image cannot pull images at boot (no %s; the linuxboot and debug images have it): %w", ref, ocipullPath, err)
	}
	if cfg.Install != "" {
		if dev, ok := s.mountInstalled(cfg); ok {
			return dev, nil, nil
		}
	}
	if net == nil {
		return "", nil, fmt.Errorf("root=%s needs the network, and there is no network link to configure", ref)
	}
	wait := max(cfg.NetWait, cfg.RootWait)
	if !net.WaitFirst(wait) {
		return "", nil, fmt.Errorf("root=%s: no network lease within %v", ref, wait)
	}
	s.b.mark("rootfound")
	// The resolver reads /etc/resolv.conf; the leases' DNS servers are in
	// ginit's own copy.
	if err := os.Symlink(netconf.ResolvConf, "/etc/resolv.conf"); err != nil && !errors.Is(err, fs.ErrExist) {
		s.b.log.Warnf("DNS for the pull: %v", err)
	}

	if cfg.Install != "" {
		s.b.log.Infof("installing %s onto %s", ref, cfg.Install)
		if err := s.runOcipull("-install", cfg.Install, ref); err != nil {
			return "", nil, fmt.Errorf("install %s onto %s: %w", ref, cfg.Install, err)
		}
		s.b.log.Infof("installed %s onto %s; rebooting into it", ref, cfg.Install)
		end := endIn(shutdown.Reboot, 0)
		return "", &end, nil
	}

	// noatime: the extraction keeps its bookkeeping in the atimes.
	if err := s.mountNewRoot("tmpfs", "tmpfs", unix.MS_NOATIME, "mode=0755,size="+cfg.RootSize); err != nil {
		return "", nil, err
	}
	s.b.log.Infof("pulling %s into a tmpfs root (size=%s)", ref, cfg.RootSize)
	if err := s.runOcipull(ref, newRoot); err != nil {
		return "", nil, fmt.Errorf("root=%s: %w", ref, err)
	}
	s.b.mark("rootmounted")
	return "tmpfs holding " + ref, nil, nil
}

// mountInstalled mounts the install disk as the root when it already holds
// the image root= names, as it does on the boot after an install.
func (s *system) mountInstalled(cfg bootcfg.Config) (string, bool) {
	spec, err := blockdev.ParseSpec(cfg.Install)
	if err != nil {
		return "", false
	}
	dev, super, err := blockdev.Wait(spec, cfg.RootWait)
	if err != nil {
		// An empty disk has no filesystem yet: the usual first install.
		if !errors.Is(err, blockdev.ErrUnknownFS) {
			s.b.log.Warnf("ginit.install=%s: %v", cfg.Install, err)
		}
		return "", false
	}
	if super.Label != imagespec.RootLabel {
		return "", false
	}
	if err := s.mountNewRoot(dev, super.Type, 0, ""); err != nil {
		s.b.log.Warnf("ginit.install=%s: %v; installing again", cfg.Install, err)
		return "", false
	}
	src, err := imagespec.ReadSource(newRoot)
	if err == nil && src.Source == cfg.Root {
		s.b.mark("rootmounted")
		s.b.log.Infof("%s already holds %s (%s); booting it", dev, src.Source, src.Digest)
		return dev, true
	}
	if err == nil {
		s.b.log.Infof("%s holds %s, not %s: installing over it", dev, src.Source, cfg.Root)
	} else {
		s.b.log.Infof("%s holds a root disk that was not installed from %s: installing over it", dev, cfg.Root)
	}
	if err := unix.Unmount(newRoot, 0); err != nil {
		s.b.log.Warnf("unmount %s: %v", newRoot, err)
	} else {
		s.mounted = false
	}
	return "", false
}

// runOcipull runs ocipull with args, its progress on the console, and
// waits. Its error, one line on its standard error, becomes the returned
// error, so that a failed pull is one "boot failed" line; anything else it
// says there (a crash's trace) goes to the console as it is.
func (s *system) runOcipull(args ...string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start %s: %w", ocipullPath, err)
	}
	defer r.Close()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   []string{"PATH=/bbin", "HOME=/"},
		Files: []uintptr{0, 1, w.Fd()},
	}
	_, wait, err := s.reaper.Start(ocipullPath, append([]string{"ocipull"}, args...), attr)
	w.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", ocipullPath, err)
	}
	said := make(chan []byte, 1)
	go func() {
		out, _ := io.ReadAll(io.LimitReader(r, 64<<10))
		io.Copy(io.Discard, r)
		said <- out
	}()
	code := reaper.ExitCode(<-wait)
	text := strings.TrimSpace(string(<-said))
	if code == 0 && text == "" {
		return nil
	}
	if text != "" && (code == 0 || strings.Contains(text, "\n")) {
		os.Stderr.WriteString(text + "\n")
		text = ""
	}
	if code == 0 {
		return nil
	}
	if text == "" {
		return fmt.Errorf("%s exited with status %d", ocipullPath, code)
	}
	return errors.New(text)
}
