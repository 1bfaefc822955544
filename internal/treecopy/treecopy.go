// Package treecopy copies a directory tree with its owners, modes, device
// numbers and modification times, as root can: ginit fills a new named
// volume from the image's content at its mount point, as docker does.
package treecopy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Copy copies what the directory src holds into the directory dst, which
// exists, and gives dst src's owner and mode. Hard links become copies;
// extended attributes are not copied.
func Copy(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := copyDir(src, dst); err != nil {
		return err
	}
	return setAttrs(dst, &st)
}

func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	for _, e := range entries {
		if err := copyEntry(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err = os.Mkdir(dst, 0o700); err == nil {
			err = copyDir(src, dst)
		}
	case unix.S_IFREG:
		err = copyFile(src, dst)
	case unix.S_IFLNK:
		var target string
		if target, err = os.Readlink(src); err == nil {
			err = os.Symlink(target, dst)
		}
	default: // devices, FIFOs, sockets
		err = unix.Mknod(dst, st.Mode, int(st.Rdev))
	}
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return setAttrs(dst, &st)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// setAttrs gives path st's owner, then its mode (chown clears set-id
// bits), and its modification time.
func setAttrs(path string, st *unix.Stat_t) error {
	err := unix.Lchown(path, int(st.Uid), int(st.Gid))
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFLNK {
		err = unix.Chmod(path, st.Mode&0o7777)
	}
	if err == nil {
		ts := []unix.Timespec{st.Atim, st.Mtim}
		err = unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("copy attributes to %s: %w", path, err)
	}
	return nil
}
