//go:build linux

package disk

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/rootfs"
)

// tree is what a walk of the root filesystem found.
type tree struct {
	content  ext4img.Content
	bytes    int64    // apparent size of regular files
	digest   [32]byte // of paths, metadata and contents
	maxMtime int64
	ownedBy  map[uint32]int64 // inodes per owner uid
	hasLF    bool             // a top-level lost+found directory
	// special lists the staged inodes that are device nodes or carry
	// extended attributes, for ext4img.MakeSpecial, in walk order.
	special []ext4img.Special
}

type walker struct {
	ctx   context.Context
	root  string
	metas *rootfs.Result // nil for a directory source
	t     tree
	h     hash.Hash
	seen  map[[2]uint64]string
	// specialAt indexes tree.special by inode, for hard links.
	specialAt map[[2]uint64]int
	buf       []byte
	// contents: hash file contents too. An image's flattened tree is
	// already named by its config digest (the layers' diff_ids).
	contents bool
}

// scanTree walks root in name order without changing any atime (the
// staging markers live there) and measures and hashes it. seed starts the
// hash; with contents false the files' bytes are left out of it.
func scanTree(ctx context.Context, root string, metas *rootfs.Result, seed []byte, contents bool) (*tree, error) {
	w := &walker{ctx: ctx, root: root, metas: metas, h: sha256.New(), seen: map[[2]uint64]string{}, specialAt: map[[2]uint64]int{},
		buf: make([]byte, 1<<20), t: tree{ownedBy: map[uint32]int64{}, maxMtime: -1 << 62}, contents: contents}
	w.h.Write(seed)
	w.t.content.Blocks = 1 // the root directory's first block
	if err := w.dir("", root); err != nil {
		return nil, err
	}
	copy(w.t.digest[:], w.h.Sum(nil))
	if w.t.maxMtime < 0 {
		w.t.maxMtime = 0
	}
	return &w.t, nil
}

// openNoatime opens a file or directory for reading without touching its
// atime where the kernel allows it (the caller owns the file, or is root).
func openNoatime(p string, dir bool) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW
	if dir {
		flags |= unix.O_DIRECTORY
	}
	fd, err := unix.Open(p, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(p, flags, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

func (w *walker) dir(rel, host string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	f, err := openNoatime(host, true)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", host, err)
	}
	sort.Strings(names)
	direntBytes := int64(24) // "." and ".."
	for _, name := range names {
		direntBytes += 8 + (int64(len(name))+3)/4*4
		if err := w.entry(rel+"/"+name, filepath.Join(host, name)); err != nil {
			return err
		}
	}
	if rel == "" {
		w.t.hasLF = containsName(names, "lost+found")
	}
	blocks := (direntBytes + ext4img.BlockSize - 1) / ext4img.BlockSize
	if blocks > 1 {
		blocks++ // htree index
	}
	w.t.content.Blocks += blocks - 1 // the first block is counted with the inode
	return nil
}

func containsName(names []string, n string) bool {
	i := sort.SearchStrings(names, n)
	return i < len(names) && names[i] == n
}

func (w *walker) entry(rel, host string) error {
	fi, err := os.Lstat(host)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no stat data", host)
	}
	uid, gid, perm, mtime := st.Uid, st.Gid, uint32(st.Mode)&0o7777, st.Mtim.Sec
	var meta rootfs.Meta
	if w.metas != nil {
		m, ok := w.metas.MetaFor(st.Atim.Sec)
		if !ok {
			return fmt.Errorf("%s: staged file has lost its marker (atime %d)", host, st.Atim.Sec)
		}
		meta = m
		uid, gid, perm, mtime = uint32(m.UID), uint32(m.GID), m.Perm, m.Mtime
	}
	typ := st.Mode & unix.S_IFMT
	if meta.Dev != nil {
		typ = unix.S_IFCHR
		if meta.Dev.Block {
			typ = unix.S_IFBLK
		}
	}
	fmt.Fprintf(w.h, "%q %o %d %d %d", rel, typ|perm, uid, gid, mtime)
	key := [2]uint64{uint64(st.Dev), st.Ino}
	if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if first, ok := w.seen[key]; ok {
			fmt.Fprintf(w.h, " link %q\n", first)
			if i, ok := w.specialAt[key]; ok {
				w.t.special[i].Paths = append(w.t.special[i].Paths, rel)
			}
			return nil
		}
		w.seen[key] = rel
	}
	if meta.Dev != nil || len(meta.Xattrs) > 0 {
		sp := ext4img.Special{Paths: []string{rel}, Marker: st.Atim.Sec}
		if d := meta.Dev; d != nil {
			sp.Dev = &ext4img.Device{Block: d.Block, Major: d.Major, Minor: d.Minor}
		}
		size := 0
		for _, x := range meta.Xattrs {
			sp.Xattrs = append(sp.Xattrs, ext4img.Xattr{Name: x.Name, Value: x.Value})
			fmt.Fprintf(w.h, " x %q %q", x.Name, x.Value)
			size += 16 + len(x.Name) + len(x.Value)
		}
		if size > 96 {
			w.t.content.Blocks++
		}
		w.specialAt[key] = len(w.t.special)
		w.t.special = append(w.t.special, sp)
	}
	w.t.content.Inodes++
	w.t.ownedBy[uid]++
	w.t.maxMtime = max(w.t.maxMtime, mtime)
	switch typ {
	case unix.S_IFREG:
		w.t.bytes += st.Size
		w.t.content.Blocks += (st.Size+ext4img.BlockSize-1)/ext4img.BlockSize + st.Size/(128<<20)
		if !w.contents {
			fmt.Fprintf(w.h, " %d", st.Size)
			break
		}
		f, err := openNoatime(host, false)
		if err != nil {
			return err
		}
		sum := sha256.New()
		_, err = io.CopyBuffer(sum, f, w.buf)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", host, err)
		}
		fmt.Fprintf(w.h, " %d %x", st.Size, sum.Sum(nil))
	case unix.S_IFLNK:
		target, err := os.Readlink(host)
		if err != nil {
			return err
		}
		if w.metas != nil {
			// readlink(2) updates the atime, where the marker is.
			ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, host, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &fs.PathError{Op: "utimensat", Path: host, Err: err}
			}
		}
		if len(target) >= 60 {
			w.t.content.Blocks++
		}
		fmt.Fprintf(w.h, " -> %q", target)
	case unix.S_IFCHR, unix.S_IFBLK:
		if d := meta.Dev; d != nil {
			fmt.Fprintf(w.h, " %d,%d", d.Major, d.Minor)
		} else {
			fmt.Fprintf(w.h, " %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	case unix.S_IFDIR:
		w.t.content.Blocks++
	}
	if err := w.xattrs(host); err != nil {
		return err
	}
	fmt.Fprintln(w.h)
	if typ == unix.S_IFDIR {
		return w.dir(rel, host)
	}
	return nil
}

// xattrs hashes the extended attributes mkfs.ext4 will copy, and counts a
// block for those too large to stay inside the inode.
func (w *walker) xattrs(host string) error {
	sz, err := unix.Llistxattr(host, nil)
	if err != nil || sz == 0 {
		return nil // no xattr support here means none to copy
	}
	list := make([]byte, sz)
	sz, err = unix.Llistxattr(host, list)
	if err != nil {
		return &fs.PathError{Op: "llistxattr", Path: host, Err: err}
	}
	names := strings.Split(strings.TrimRight(string(list[:sz]), "\x00"), "\x00")
	sort.Strings(names)
	total := 0
	for _, n := range names {
		vsz, err := unix.Lgetxattr(host, n, nil)
		if err != nil {
			return &fs.PathError{Op: "lgetxattr " + n, Path: host, Err: err}
		}
		v := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(host, n, v)
		if err != nil {
			return &fs.PathError{Op: "lgetxattr " + n, Path: host, Err: err}
		}
		total += 16 + len(n) + vsz
		fmt.Fprintf(w.h, " x %q %q", n, v[:vsz])
	}
	if total > 96 {
		w.t.content.Blocks++
	}
	return nil
}
