// Package mounts holds mount steps as data: the pseudo-filesystems PID 1
// mounts first, the ones it carries into the workload's root, and the
// unmounting at shutdown.
package mounts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) call and the directory it needs.
type Mount struct {
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	Mode   os.FileMode // of Target when it has to be made
	// Optional mounts may fail (a kernel without the filesystem) with a
	// warning instead of an error.
	Optional bool
}

func (m Mount) String() string {
	return fmt.Sprintf("mount(%q, %q, %q, %#x, %q)", m.Source, m.Target, m.FSType, m.Flags, m.Data)
}

// Do makes the target directory and mounts. An already mounted target with
// the same filesystem (EBUSY) counts as done.
func (m Mount) Do() error {
	mode := m.Mode
	if mode == 0 {
		mode = 0o755
	}
	if err := os.MkdirAll(m.Target, mode); err != nil {
		return fmt.Errorf("mkdir %s: %w", m.Target, err)
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
		if errors.Is(err, unix.EBUSY) && m.Flags&unix.MS_BIND == 0 {
			return nil
		}
		return fmt.Errorf("%s: %w", m, err)
	}
	return nil
}

const nodevExec = unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV

// Early are the filesystems PID 1 mounts before anything else, in order.
func Early() []Mount {
	return []Mount{
		{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
		{Source: "proc", Target: "/proc", FSType: "proc", Flags: nodevExec},
		{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: nodevExec},
		{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"},
		{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777", Mode: 0o1777},
		{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "mode=0620,ptmxmode=0666,gid=5"},
		{Source: "tmpfs", Target: "/dev/shm", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777", Mode: 0o1777},
		{Source: "cgroup2", Target: "/sys/fs/cgroup", FSType: "cgroup2", Flags: nodevExec, Optional: true},
	}
}

// IntoRoot are the mounts that give a workload's root the machine's /dev,
// /proc, /sys and /run, and a /tmp of its own.
func IntoRoot(root string) []Mount {
	bind := func(dir string) Mount {
		return Mount{Source: dir, Target: filepath.Join(root, dir), Flags: unix.MS_BIND | unix.MS_REC}
	}
	return []Mount{
		bind("/dev"),
		bind("/proc"),
		bind("/sys"),
		bind("/run"),
		{Source: "tmpfs", Target: filepath.Join(root, "tmp"), FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777", Mode: 0o1777},
	}
}

// MountPoints returns the mount points in /proc/self/mountinfo text, in the
// order they were mounted.
func MountPoints(mountinfo string) []string {
	var points []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		points = append(points, unescape(f[4]))
	}
	return points
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var n int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &n); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// UnmountOrder returns the mount points at or below root, deepest and latest
// first: the order in which they can be unmounted.
func UnmountOrder(points []string, root string) []string {
	type entry struct {
		path  string
		index int
	}
	var under []entry
	seen := map[string]bool{}
	for i, p := range points {
		if p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/") {
			under = append(under, entry{p, i})
		}
	}
	// Latest mounted first; the kernel's own order already has parents
	// before children.
	sort.SliceStable(under, func(a, b int) bool { return under[a].index > under[b].index })
	var out []string
	for _, e := range under {
		if !seen[e.path] {
			seen[e.path] = true
			out = append(out, e.path)
		}
	}
	return out
}

// UnmountAll unmounts every mount at or below root, latest first. What stays
// busy is remounted read-only so its filesystem is clean. It returns the
// mount points it could do neither to.
func UnmountAll(root string) (stuck []string, err error) {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	for _, p := range UnmountOrder(MountPoints(string(info)), root) {
		if err := unix.Unmount(p, 0); err == nil {
			continue
		}
		if err := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			stuck = append(stuck, p)
		}
	}
	return stuck, nil
}
