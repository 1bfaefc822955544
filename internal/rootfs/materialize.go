package rootfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Materialize gives the staged tree under root its real metadata in place:
// owners, modes with setuid/setgid/sticky, device nodes, extended attributes
// and mtimes, from res. It needs root, and is what a diskless boot or an
// install does where the tree itself is the root filesystem (no disk image
// to patch). The tree must not be touched between Finish and Materialize,
// and should sit on a noatime mount: the markers live in the atimes.
func Materialize(root string, res *Result) error {
	type item struct {
		path string
		fi   fs.FileInfo
		meta Meta
	}
	var files, dirs []item
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Lstat before the walk reads a directory, which could move
		// its atime.
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		meta, ok := res.MetaFor(atimeSec(st))
		if !ok {
			// The root directory itself, and what the caller added.
			return nil
		}
		it := item{p, fi, meta}
		if d.IsDir() {
			dirs = append(dirs, it)
		} else {
			files = append(files, it)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scanning %s: %w", root, err)
	}
	// Files first: making a device node changes its directory's mtime.
	// Directories deepest first, for the same reason.
	for _, it := range files {
		if err := apply(it.path, it.fi, it.meta); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := apply(dirs[i].path, dirs[i].fi, dirs[i].meta); err != nil {
			return err
		}
	}
	return nil
}

// apply sets one inode's metadata. chown comes before chmod, which it would
// otherwise clear setuid and setgid from.
func apply(p string, fi fs.FileInfo, m Meta) error {
	if m.Dev != nil {
		mode := uint32(unix.S_IFCHR)
		if m.Dev.Block {
			mode = unix.S_IFBLK
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := unix.Mknod(p, mode|m.Perm&0o7777, int(unix.Mkdev(m.Dev.Major, m.Dev.Minor))); err != nil {
			return &fs.PathError{Op: "mknod", Path: p, Err: err}
		}
	}
	if err := os.Lchown(p, m.UID, m.GID); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		if err := unix.Chmod(p, m.Perm&0o7777); err != nil {
			return &fs.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	for _, x := range m.Xattrs {
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
			return &fs.PathError{Op: "setxattr " + x.Name, Path: p, Err: err}
		}
	}
	ts := []unix.Timespec{{Sec: m.Mtime}, {Sec: m.Mtime}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: p, Err: err}
	}
	return nil
}
