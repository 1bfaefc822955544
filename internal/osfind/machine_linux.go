package osfind

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Device is a block device that may hold a filesystem: a partition, or a
// whole disk without partitions.
type Device struct {
	Name string // vda1
	Path string // /dev/vda1
	Disk int    // index of its disk among the machine's disks, in name order
	Part int    // partition number; 0 for a whole disk
}

// Devices lists the block devices of sysBlock (/sys/class/block) that may
// hold a filesystem, disk by disk and partitions in order. RAM disks, loop
// devices, floppies and empty drives are left out.
func Devices(sysBlock, devDir string) ([]Device, error) {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	type dev struct {
		name, disk string
		part       int
	}
	var disks []string
	var parts []dev
	hasParts := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "zram") || strings.HasPrefix(name, "fd") {
			continue
		}
		empty := false
		if b, err := os.ReadFile(filepath.Join(sysBlock, name, "size")); err == nil && strings.TrimSpace(string(b)) == "0" {
			empty = true
		}
		b, err := os.ReadFile(filepath.Join(sysBlock, name, "partition"))
		if err != nil {
			if !empty {
				disks = append(disks, name)
			}
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		// A partition's directory is inside its disk's.
		real, err := filepath.EvalSymlinks(filepath.Join(sysBlock, name))
		if err != nil {
			continue
		}
		disk := filepath.Base(filepath.Dir(real))
		hasParts[disk] = true
		if !empty {
			parts = append(parts, dev{name, disk, n})
		}
	}
	sort.Slice(disks, func(i, j int) bool { return compareVersions(disks[i], disks[j]) < 0 })
	var out []Device
	for i, disk := range disks {
		if !hasParts[disk] {
			out = append(out, Device{Name: disk, Path: filepath.Join(devDir, disk), Disk: i})
			continue
		}
		var mine []dev
		for _, p := range parts {
			if p.disk == disk {
				mine = append(mine, p)
			}
		}
		sort.Slice(mine, func(a, b int) bool { return mine[a].part < mine[b].part })
		for _, p := range mine {
			out = append(out, Device{Name: p.name, Path: filepath.Join(devDir, p.name), Disk: i, Part: p.part})
		}
	}
	return out, nil
}

// ErrNoFilesystem is returned for a device with no filesystem the kernel
// can mount.
var ErrNoFilesystem = errors.New("no filesystem the kernel can mount")

// Machine finds the boot entries on a machine's disks: it mounts every
// filesystem read-only under MountDir, one directory per device, and scans
// them. Close unmounts them.
type Machine struct {
	SysBlock string // /sys/class/block
	DevDir   string // /dev
	MountDir string // /run/osboot
	// Logf reports each filesystem mounted and each device that could not
	// be; Debugf the devices that hold no filesystem (swap, a BIOS boot
	// partition). nil: nothing.
	Logf, Debugf func(format string, args ...any)

	mounted []*FS
	tried   map[string]bool
}

func (m *Machine) logf(format string, args ...any) {
	if m.Logf != nil {
		m.Logf(format, args...)
	}
}

func (m *Machine) debugf(format string, args ...any) {
	if m.Debugf != nil {
		m.Debugf(format, args...)
	}
}

// Find mounts the filesystems of the machine's devices and scans them, and
// does so again for the devices that appear until it has an entry or wait
// has passed (disks come up a little after their drivers load). It returns
// the entries, the problems that did not stop the scan, and an error when
// it found nothing to boot, which says why.
func (m *Machine) Find(wait time.Duration) ([]Entry, []error, error) {
	deadline := time.Now().Add(wait)
	if m.tried == nil {
		m.tried = map[string]bool{}
	}
	for {
		devs, err := Devices(m.SysBlock, m.DevDir)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range devs {
			if m.tried[d.Path] {
				continue
			}
			m.tried[d.Path] = true
			fsys, err := m.mount(d)
			if errors.Is(err, ErrNoFilesystem) {
				m.debugf("%v", err)
				continue
			}
			if err != nil {
				m.logf("%v", err)
				continue
			}
			m.logf("%s: %s%s mounted read-only at %s", fsys.Dev, fsys.Type, describeFS(fsys), fsys.Dir)
		}
		entries, problems := Scan(m.mounted)
		if len(entries) > 0 {
			return entries, problems, nil
		}
		if !time.Now().Before(deadline) {
			return nil, problems, m.nothing(problems)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describeFS(f *FS) string {
	var s []string
	if f.UUID != "" {
		s = append(s, "UUID="+f.UUID)
	}
	if f.Label != "" {
		s = append(s, "LABEL="+f.Label)
	}
	if len(s) == 0 {
		return ""
	}
	return " (" + strings.Join(s, " ") + ")"
}

// nothing says why no entry was found.
func (m *Machine) nothing(problems []error) error {
	if len(m.tried) == 0 {
		return errors.New("no block devices")
	}
	if len(m.mounted) == 0 {
		var names []string
		for d := range m.tried {
			names = append(names, d)
		}
		sort.Strings(names)
		return fmt.Errorf("no filesystem on %s", strings.Join(names, ", "))
	}
	var names []string
	for _, f := range m.mounted {
		names = append(names, f.Dev)
	}
	msg := fmt.Sprintf("no GRUB, syslinux or BLS config with a Linux entry and no /boot/vmlinuz-* on %s", strings.Join(names, ", "))
	if len(problems) > 0 {
		return fmt.Errorf("%s: %w", msg, errList(problems))
	}
	return errors.New(msg)
}

// errList is several errors on one line, for a message that must stay one
// line on the console.
type errList []error

func (l errList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (l errList) Unwrap() []error { return l }

// mount mounts d read-only under MountDir.
func (m *Machine) mount(d Device) (*FS, error) {
	b := make([]byte, probeSize)
	f, err := os.Open(d.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Path, unwrapPath(err))
	}
	n, err := io.ReadFull(f, b)
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%s: read: %w", d.Path, unwrapPath(err))
	}
	fsys := &FS{Dev: d.Path, Dir: filepath.Join(m.MountDir, d.Name), Disk: d.Disk, Part: d.Part}
	typ, uuid, label, known := identify(b[:n])
	fsys.UUID, fsys.Label = uuid, label
	if err := os.MkdirAll(fsys.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: mkdir %s: %w", d.Path, fsys.Dir, err)
	}
	const flags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	var types []string
	switch {
	case strings.HasPrefix(typ, "ext"):
		// ext4 reads ext2 and ext3 too. noload: a read-only look does not
		// replay the journal, as a boot loader does not write the disk.
		if unix.Mount(d.Path, fsys.Dir, "ext4", flags, "noload") == nil {
			fsys.Type = typ
			m.mounted = append(m.mounted, fsys)
			return fsys, nil
		}
		types = []string{"ext4"}
	case known:
		types = []string{typ}
	default:
		types = kernelFilesystems("/proc/filesystems")
	}
	var last error
	for _, t := range types {
		if err := unix.Mount(d.Path, fsys.Dir, t, flags, ""); err != nil {
			last = err
			continue
		}
		fsys.Type = t
		m.mounted = append(m.mounted, fsys)
		return fsys, nil
	}
	os.Remove(fsys.Dir)
	if known {
		return nil, fmt.Errorf("%s: mount %s read-only on %s: %w", d.Path, typ, fsys.Dir, last)
	}
	return nil, fmt.Errorf("%s: %w", d.Path, ErrNoFilesystem)
}

// kernelFilesystems lists the filesystems on block devices the kernel has
// (/proc/filesystems without nodev), for devices identify does not know.
func kernelFilesystems(procFilesystems string) []string {
	b, err := os.ReadFile(procFilesystems)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 1 && !strings.HasPrefix(f[0], "ext") && f[0] != "vfat" && f[0] != "iso9660" {
			out = append(out, f[0])
		}
	}
	return out
}

// Close unmounts what Find mounted, the last first, and removes the mount
// points.
func (m *Machine) Close() error {
	var errs []error
	for i := len(m.mounted) - 1; i >= 0; i-- {
		dir := m.mounted[i].Dir
		if err := unix.Unmount(dir, 0); err != nil {
			if err2 := unix.Unmount(dir, unix.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("unmount %s (%s): %w", dir, m.mounted[i].Dev, err))
				continue
			}
		}
		os.Remove(dir)
	}
	m.mounted = nil
	os.Remove(m.MountDir)
	return errors.Join(errs...)
}
