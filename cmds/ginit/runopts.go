package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/mounts"
	"github.com/ginit-dev/ginit/internal/netconf"
	"github.com/ginit-dev/ginit/internal/rootpath"
	"github.com/ginit-dev/ginit/internal/rundoc"
	"github.com/ginit-dev/ginit/internal/treecopy"
)

// netParams is ip= with the run document's name servers and extra hosts,
// as docker run --dns and --add-host give them. rundoc.Parse checked them.
func netParams(cfg bootcfg.Config, doc rundoc.Document) netconf.Params {
	p := netconf.Params{IP: cfg.IP}
	for _, s := range doc.DNS {
		if a, err := netip.ParseAddr(s); err == nil {
			p.DNS = append(p.DNS, a)
		}
	}
	for _, s := range doc.ExtraHosts {
		if h, err := rundoc.ParseHost(s); err == nil {
			p.Hosts = append(p.Hosts, h.IP.String()+"\t"+h.Name)
		}
	}
	return p
}

// runMounts are the run document's volumes and tmpfs mounts, parents
// before what is mounted below them: with late, those below the mounts
// prepareRoot makes (mounts.IntoRoot: /dev, /proc, /sys, /run, /tmp), which
// would hide them; without, the others. Disk volumes are found by serial.
func (s *system) runMounts(doc rundoc.Document, late bool) ([]mounts.Mount, error) {
	var ms []mounts.Mount
	for _, v := range doc.Volumes {
		if underPrepared(v.Target) != late {
			continue
		}
		m := mounts.Mount{Source: v.Source, Target: v.Target, FSType: v.Type}
		if v.Type == rundoc.Disk {
			dev, err := waitSerial(v.Source, s.b.cfg.RootWait)
			if err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Target, err)
			}
			m.Source, m.FSType = dev, "ext4"
		}
		if v.ReadOnly {
			m.Flags = unix.MS_RDONLY
		}
		ms = append(ms, m)
	}
	for path, opts := range doc.Tmpfs {
		if underPrepared(path) != late {
			continue
		}
		flags, data, err := mounts.ParseTmpfsOptions(opts, mounts.TmpfsDefaults)
		if err != nil {
			return nil, err
		}
		ms = append(ms, mounts.Mount{Source: "tmpfs", Target: path, FSType: "tmpfs", Flags: flags, Data: data})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Target < ms[j].Target })
	return ms, nil
}

// underPrepared says whether path is at or below a mount prepareRoot makes.
func underPrepared(path string) bool {
	for _, m := range mounts.IntoRoot("/") {
		if path == m.Target || strings.HasPrefix(path, m.Target+"/") {
			return true
		}
	}
	return false
}

// mountRunDocument mounts the run document's volumes and tmpfs into the
// root (see runMounts for late), each target followed inside the root (a
// symlink in the image does not lead out of it) and made when missing;
// then, once late, for read_only, it makes the root's own mount
// read-only, as docker run --read-only: what is mounted on it (/dev, /run,
// /tmp, the volumes) stays as it is.
func (s *system) mountRunDocument(late bool) error {
	doc := s.b.doc
	ms, err := s.runMounts(doc, late)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.Target, err = rootpath.Resolve(newRoot, m.Target); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Target, err)
		}
		if m.FSType == "ext4" { // a named volume's disk
			if err := fillVolume(m.Source, m.Target); err != nil {
				return err
			}
		}
		if err := m.Do(); err != nil {
			return err
		}
	}
	if late && doc.ReadOnly {
		if err := unix.Mount("", newRoot, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", newRoot, err)
		}
	}
	return nil
}

// waitSerial waits up to d for the disk whose serial number is serial
// (virtio-blk's serial=, in /sys/block/NAME/serial) and returns its device.
func waitSerial(serial string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		names, _ := filepath.Glob("/sys/block/*/serial")
		for _, p := range names {
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == serial {
				return "/dev/" + filepath.Base(filepath.Dir(p)), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no disk with serial %s after %v", serial, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fillVolume copies what the image has at target into the volume on dev
// when the volume is new, as docker does: its file system holds nothing
// but lost+found.
func fillVolume(dev, target string) error {
	if entries, err := os.ReadDir(target); err != nil || len(entries) == 0 {
		return nil // nothing to copy
	}
	const tmp = "/run/ginit/volume"
	if err := (mounts.Mount{Source: dev, Target: tmp, FSType: "ext4"}).Do(); err != nil {
		return err
	}
	defer unix.Unmount(tmp, 0)
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) > 1 || len(entries) == 1 && entries[0].Name() != "lost+found" {
		return err // not new
	}
	return treecopy.Copy(target, tmp)
}
