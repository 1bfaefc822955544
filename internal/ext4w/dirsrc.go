package ext4w

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// AddDir adds the tree under the host directory root, as it is: owners,
// modes, mtimes (64-bit), device numbers, hard links (by device and inode)
// and extended attributes, the names that hold no data for the disk
// (overlayfs's own trusted.overlay.*) left out. ownedBy, when set, counts
// inodes by owner uid.
func (t *Tree) AddDir(ctx context.Context, root string, ownedBy map[uint32]int64) error {
	d := &dirReader{t: t, ctx: ctx, seen: map[[2]uint64]*Node{}, ownedBy: ownedBy}
	return d.dir(t.Root, root)
}

type dirReader struct {
	t       *Tree
	ctx     context.Context
	seen    map[[2]uint64]*Node
	ownedBy map[uint32]int64
}

func (d *dirReader) dir(n *Node, host string) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", host, err)
	}
	sort.Strings(names)
	for _, name := range names {
		if len(name) > maxNameLen {
			return fmt.Errorf("%s: %w", filepath.Join(host, name), ErrNameTooLong)
		}
		c, err := d.entry(filepath.Join(host, name))
		if err != nil {
			return err
		}
		d.t.set(n, name, c)
	}
	return nil
}

func (d *dirReader) entry(host string) (*Node, error) {
	fi, err := os.Lstat(host)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no stat data", host)
	}
	key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	if !fi.IsDir() && st.Nlink > 1 {
		if n := d.seen[key]; n != nil {
			return n, nil
		}
	}
	n := &Node{UID: st.Uid, GID: st.Gid, Mode: uint32(st.Mode) & 0o7777, Mtime: fi.ModTime().Unix()}
	d.t.noteMtime(n.Mtime)
	if d.ownedBy != nil {
		d.ownedBy[n.UID]++
	}
	switch fi.Mode().Type() {
	case 0:
		n.Mode |= TypeReg
		f, err := os.Open(host)
		if err != nil {
			return nil, err
		}
		n.Data, err = d.t.File.Add(f, fi.Size())
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", host, err)
		}
		d.t.Bytes += fi.Size()
	case fs.ModeDir:
		n.Mode |= TypeDir
		n.children = map[string]*Node{}
	case fs.ModeSymlink:
		n.Mode |= TypeSymlink
		if n.Target, err = os.Readlink(host); err != nil {
			return nil, err
		}
		if err := checkSymlink(n.Target); err != nil {
			return nil, fmt.Errorf("%s: %w", host, err)
		}
	case fs.ModeDevice | fs.ModeCharDevice, fs.ModeDevice:
		n.Mode |= TypeBlock
		if fi.Mode()&fs.ModeCharDevice != 0 {
			n.Mode = n.Mode&^typeMask | TypeChar
		}
		rdev := uint64(st.Rdev)
		n.Major, n.Minor = unix.Major(rdev), unix.Minor(rdev)
	case fs.ModeNamedPipe:
		n.Mode |= TypeFifo
	case fs.ModeSocket:
		n.Mode |= TypeSocket
	default:
		return nil, fmt.Errorf("%s: file type %v not supported", host, fi.Mode().Type())
	}
	if n.Xattrs, err = hostXattrs(host); err != nil {
		return nil, err
	}
	if err := checkXattrs(n.Xattrs); err != nil {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	if !fi.IsDir() && st.Nlink > 1 {
		d.seen[key] = n
	}
	if n.IsDir() {
		if err := d.dir(n, host); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// hiddenXattr says whether an attribute is the host file system's own
// and no content: overlayfs's trusted.overlay.* (which the kernel counts
// in llistxattr's size and then leaves out of the list).
func hiddenXattr(name string) bool {
	return name == "" || strings.HasPrefix(name, "trusted.overlay.")
}
