package nsrun

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/rootpath"
)

// MaskedPaths are hidden from the command unless Privileged: runc's list,
// with /proc/sysrq-trigger masked rather than only read-only. Each call
// returns a fresh slice, so no caller can change the rule for the others.
func MaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/sysrq-trigger",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
}

// ReadOnlyPaths are read-only for the command unless Privileged.
func ReadOnlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"}
}

type stepKind int

const (
	stepMount    stepKind = iota // mount(Source, Target, FSType, Flags, Data)
	stepBind                     // bind the host path Source, read-only if ReadOnly
	stepDevice                   // mknod Target as character device Major:Minor
	stepSymlink                  // symlink Target -> Source
	stepMask                     // hide Target: /dev/null over a file, a read-only tmpfs over a directory
	stepReadOnly                 // bind Target onto itself read-only
)

// step is one thing done to the root before entering it. Target is a path
// inside the root; it is resolved there, so symlinks in the root never lead
// out of it.
type step struct {
	Kind     stepKind
	Source   string
	Target   string
	FSType   string
	Flags    uintptr
	Data     string
	ReadOnly bool
	Major    uint32
	Minor    uint32
	Mode     uint32
	// Optional steps may fail (a kernel without the filesystem) with a
	// warning.
	Optional bool
}

func (s step) String() string {
	switch s.Kind {
	case stepMount:
		return fmt.Sprintf("mount %s on %s (%s, %#x, %q)", s.Source, s.Target, s.FSType, s.Flags, s.Data)
	case stepBind:
		ro := ""
		if s.ReadOnly {
			ro = " read-only"
		}
		return fmt.Sprintf("bind %s on %s%s", s.Source, s.Target, ro)
	case stepDevice:
		return fmt.Sprintf("mknod %s c %d %d", s.Target, s.Major, s.Minor)
	case stepSymlink:
		return fmt.Sprintf("symlink %s -> %s", s.Target, s.Source)
	case stepMask:
		return fmt.Sprintf("mask %s", s.Target)
	case stepReadOnly:
		return fmt.Sprintf("make %s read-only", s.Target)
	}
	return fmt.Sprintf("step %d on %s", s.Kind, s.Target)
}

const (
	noSuidDevExec = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	noSuidDev     = unix.MS_NOSUID | unix.MS_NODEV
)

// plan lists what setupRoot does inside the root, in order. carried are the
// host mount points CarryMounts brings in; console is the host path of the
// caller's terminal, or empty.
func plan(spec *initSpec, carried []string, console string) []step {
	var steps []step
	for _, m := range carried {
		steps = append(steps, step{Kind: stepBind, Source: m, Target: m})
	}
	steps = append(steps,
		step{Kind: stepMount, Source: "proc", Target: "/proc", FSType: "proc", Flags: noSuidDevExec},
		step{Kind: stepMount, Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: noSuidDevExec | unix.MS_RDONLY},
		// A cgroup2 hierarchy of its own, whatever the host mounts at
		// /sys/fs/cgroup (v1 controllers on some).
		step{Kind: stepMount, Source: "cgroup2", Target: "/sys/fs/cgroup", FSType: "cgroup2", Flags: noSuidDevExec, Optional: true},
	)
	if spec.Dev == DevHost {
		steps = append(steps, step{Kind: stepBind, Source: "/dev", Target: "/dev"})
	} else {
		steps = append(steps, step{Kind: stepMount, Source: "tmpfs", Target: "/dev", FSType: "tmpfs",
			Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"})
		for _, d := range []struct {
			name         string
			major, minor uint32
		}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
			steps = append(steps, step{Kind: stepDevice, Target: "/dev/" + d.name, Major: d.major, Minor: d.minor, Mode: 0o666})
		}
		if console != "" {
			steps = append(steps, step{Kind: stepBind, Source: console, Target: "/dev/console"})
		}
		steps = append(steps,
			step{Kind: stepMount, Source: "devpts", Target: "/dev/pts", FSType: "devpts",
				Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
			step{Kind: stepSymlink, Source: "pts/ptmx", Target: "/dev/ptmx"},
			step{Kind: stepMount, Source: "shm", Target: "/dev/shm", FSType: "tmpfs", Flags: noSuidDevExec, Data: "mode=1777,size=65536k"},
			step{Kind: stepSymlink, Source: "/proc/self/fd", Target: "/dev/fd"},
			step{Kind: stepSymlink, Source: "/proc/self/fd/0", Target: "/dev/stdin"},
			step{Kind: stepSymlink, Source: "/proc/self/fd/1", Target: "/dev/stdout"},
			step{Kind: stepSymlink, Source: "/proc/self/fd/2", Target: "/dev/stderr"},
		)
	}
	if spec.NewIPC {
		steps = append(steps, step{Kind: stepMount, Source: "mqueue", Target: "/dev/mqueue", FSType: "mqueue", Flags: noSuidDevExec, Optional: true})
	}
	steps = append(steps,
		step{Kind: stepMount, Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: noSuidDev, Data: "mode=755"},
		step{Kind: stepMount, Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: noSuidDev, Data: "mode=1777"},
	)
	for _, b := range spec.Binds {
		steps = append(steps, step{Kind: stepBind, Source: b.Source, Target: b.Target, ReadOnly: b.ReadOnly})
	}
	for _, t := range spec.Tmpfs {
		steps = append(steps, step{Kind: stepMount, Source: "tmpfs", Target: t, FSType: "tmpfs", Flags: noSuidDev, Data: "mode=755"})
	}
	if !spec.Privileged {
		for _, p := range MaskedPaths() {
			steps = append(steps, step{Kind: stepMask, Target: p, Optional: true})
		}
		for _, p := range ReadOnlyPaths() {
			steps = append(steps, step{Kind: stepReadOnly, Target: p, Optional: true})
		}
	}
	return steps
}

// setupRoot runs in the new mount namespace: it makes the root a mount
// point, does the plan's steps in it, and enters it. It returns how it
// entered: "pivot_root" or "move".
func setupRoot(spec *initSpec, warn func(string)) (string, error) {
	root := spec.Root
	// Nothing done here reaches the caller's namespace, and the caller's
	// later mounts do not reach in.
	// EINVAL: / is not a mount point (we run chrooted); the root's own
	// mount is made private below instead.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil && !errors.Is(err, unix.EINVAL) {
		return "", fmt.Errorf("make / private (MS_REC|MS_PRIVATE): %w", err)
	}
	// pivot_root and MS_MOVE both need the root to be a mount point.
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("bind root %s onto itself (MS_BIND|MS_REC): %w", root, err)
	}
	if err := unix.Mount("", root, "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return "", fmt.Errorf("make root %s private (MS_REC|MS_PRIVATE): %w", root, err)
	}
	var carried []string
	if spec.CarryMounts {
		f, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			return "", fmt.Errorf("carry mounts: %w", err)
		}
		carried = carriedMounts(parseMountPoints(f), root)
		f.Close()
	}
	for _, s := range plan(spec, carried, terminalPath(0)) {
		if err := s.apply(root); err != nil {
			if s.Optional {
				// A missing masked path is the normal case, not news.
				if !errors.Is(err, os.ErrNotExist) {
					warn(err.Error())
				}
				continue
			}
			return "", err
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return "", fmt.Errorf("sethostname %q: %w", spec.Hostname, err)
		}
	}
	if spec.ReadOnlyRoot {
		if err := remountReadOnly(root); err != nil {
			return "", err
		}
	}
	return enterRoot(root)
}

// terminalPath is the host path of the terminal on fd, or "" when fd is not
// one.
func terminalPath(fd int) string {
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return ""
	}
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil || !strings.HasPrefix(p, "/dev/") {
		return ""
	}
	return p
}

func (s step) apply(root string) error {
	target, err := rootpath.Resolve(root, s.Target)
	if err != nil {
		return fmt.Errorf("%s: resolve in %s: %w", s, root, err)
	}
	switch s.Kind {
	case stepMount:
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("%s: mkdir %s: %w", s, target, err)
		}
		if err := unix.Mount(s.Source, target, s.FSType, s.Flags, s.Data); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	case stepBind:
		if err := bindMount(s.Source, target, s.ReadOnly); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	case stepDevice:
		if err := makeDevice(target, s.Major, s.Minor, s.Mode); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	case stepSymlink:
		if err := os.Symlink(s.Source, target); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", s, err)
		}
	case stepMask:
		fi, err := os.Stat(target)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY, "")
		} else {
			err = unix.Mount("/dev/null", target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	case stepReadOnly:
		if _, err := os.Stat(target); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		if err := unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("%s: bind onto itself: %w", s, err)
		}
		if err := remountReadOnly(target); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// bindMount binds source on target, making target a file or directory like
// source, and makes it read-only if asked.
func bindMount(source, target string, readOnly bool) error {
	fi, err := os.Stat(source)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", target, err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", filepath.Dir(target), err)
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return fmt.Errorf("create mount point %s: %w", target, err)
		}
		f.Close()
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mount %s on %s (MS_BIND|MS_REC): %w", source, target, err)
	}
	if readOnly {
		return remountReadOnly(target)
	}
	return nil
}

// remountReadOnly makes the bind mount at p read-only, keeping its nosuid,
// nodev and noexec: a remount replaces the flags it is not given.
func remountReadOnly(p string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", p, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := unix.Mount("", p, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only (%#x): %w", p, flags, err)
	}
	return nil
}

// makeDevice makes a character device, or binds the host's where mknod is
// not allowed.
func makeDevice(target string, major, minor, mode uint32) error {
	err := unix.Mknod(target, unix.S_IFCHR|mode, int(unix.Mkdev(major, minor)))
	if err == nil || errors.Is(err, unix.EEXIST) {
		// mknod's mode went through the umask.
		return os.Chmod(target, os.FileMode(mode))
	}
	if errors.Is(err, unix.EPERM) {
		return bindMount(path.Join("/dev", path.Base(target)), target, false)
	}
	return err
}

// enterRoot makes root the root directory, with pivot_root where it can, and
// with MS_MOVE and chroot where the current root is the initramfs (rootfs
// cannot be pivoted away from) or otherwise not a mount point.
func enterRoot(root string) (string, error) {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open root %s: %w", root, err)
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return "", fmt.Errorf("chdir %s: %w", root, err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one, where
	// it can be detached without a directory for it in the new root.
	err = unix.PivotRoot(".", ".")
	if errors.Is(err, unix.EINVAL) {
		return moveRoot(root)
	}
	if err != nil {
		return "", fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return "", fmt.Errorf("chdir to the old root: %w", err)
	}
	// Slave first, so that detaching does not propagate anywhere.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("make the old root slave (MS_SLAVE|MS_REC): %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return "", fmt.Errorf("detach the old root (MNT_DETACH): %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return "", fmt.Errorf("chdir / in %s: %w", root, err)
	}
	return "pivot_root", nil
}

// moveRoot is switch_root's way in: the root's mount moves onto / and the
// process chroots into it. The old root stays underneath, out of reach of a
// command without CAP_SYS_CHROOT.
func moveRoot(root string) (string, error) {
	if err := unix.Chdir(root); err != nil {
		return "", fmt.Errorf("chdir %s: %w", root, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return "", fmt.Errorf("move %s onto / (MS_MOVE): %w", root, err)
	}
	if err := unix.Chroot("."); err != nil {
		return "", fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return "", fmt.Errorf("chdir / in %s: %w", root, err)
	}
	return "move", nil
}

// mountPoint is one line of /proc/self/mountinfo.
type mountPoint struct {
	Path   string
	FSType string
}

// parseMountPoints reads mountinfo lines.
func parseMountPoints(r io.Reader) []mountPoint {
	var out []mountPoint
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		f := strings.Fields(sc.Text())
		if len(f) < 7 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) {
			continue
		}
		out = append(out, mountPoint{Path: unescapeMountinfo(f[4]), FSType: f[sep+1]})
	}
	return out
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pseudoFS says whether fstype is a filesystem the namespace gets fresh or
// not at all. (A switch, not a map: no init-time work in every command of
// the busybox-style binary.)
func pseudoFS(fstype string) bool {
	switch fstype {
	case "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "mqueue", "debugfs", "tracefs",
		"securityfs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs", "autofs", "binfmt_misc",
		"efivarfs", "selinuxfs", "rpc_pipefs", "nsfs", "rootfs":
		return true
	}
	return false
}

// carriedMounts picks the host's extra mount points to bind into root: not
// pseudo-filesystems, not under /proc, /sys or /dev, not root itself or
// anything at or above it, and only the outermost of nested ones (a
// recursive bind brings the rest).
func carriedMounts(mounts []mountPoint, root string) []string {
	under := func(p, dir string) bool {
		return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
	}
	var out []string
	for _, m := range mounts {
		p := path.Clean(m.Path)
		switch {
		case p == "/", pseudoFS(m.FSType),
			under(p, "/proc"), under(p, "/sys"), under(p, "/dev"),
			under(p, root), under(root, p):
			continue
		}
		nested := false
		for _, o := range out {
			if under(p, o) {
				nested = true
				break
			}
		}
		if !nested {
			// A later mount on the same point hides the earlier one, and
			// the recursive bind brings the one on top.
			out = append(out, p)
		}
	}
	return out
}
