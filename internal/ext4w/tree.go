// Package ext4w writes an ext4 file system, in pure Go, from a tree built
// in memory: the layers of a container image applied in order (whiteouts
// and opaque directories included), a flat tar, or a directory of the
// host. Nothing is extracted to the host's file system and no e2fsprogs
// tool runs, so it works as any user and on any OS.
//
// File contents go, as the layers stream, straight to their final blocks
// in the image, all-zero blocks left out as holes; the tree keeps, per
// file, where its blocks are. Where a block goes depends on the order of
// the stream alone, not on the file system's size, which is known only at
// the end: the superblock and descriptor copies sit where meta_bg puts
// them, at the start of fixed groups, and the bitmaps, inode tables,
// journal, directories and extent trees are placed after the data once
// the tree is final. A file that a later layer replaces or deletes gives
// its blocks back to the files that follow (a file goes whole into such a
// hole if one holds it, else after the data), and what no file took back
// is zeroed (punched out) before metadata may go there. Each byte of file
// data is written once, and nothing where the file system is empty, so
// the image is sparse. Placing data as it streams, rather than once the
// tree is final, saves writing every byte twice (to a spool, then into
// place).
//
// The file system is mke2fs's ext4: 4 KiB blocks, 256-byte inodes, flex_bg,
// 64bit, extents, metadata_csum, dir_index, a journal of mke2fs's default
// size, 64-bit times with nanoseconds, and extended attributes in the inode
// or in one block; with meta_bg, which mke2fs uses past 16 TiB and which
// lets the kernel grow the file system online without a resize inode.
package ext4w

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/ginit-dev/ginit/internal/rootfs"
)

// File types, as S_IFMT bits.
const (
	TypeReg     = 0o100000
	TypeDir     = 0o040000
	TypeSymlink = 0o120000
	TypeChar    = 0o020000
	TypeBlock   = 0o060000
	TypeFifo    = 0o010000
	TypeSocket  = 0o140000
	typeMask    = 0o170000
)

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Node is one inode of the tree. A hard link is one Node under several
// names.
type Node struct {
	Mode     uint32 // type and permission bits
	UID, GID uint32
	Mtime    int64 // seconds
	Major    uint32
	Minor    uint32
	Target   string // a symlink's target
	Xattrs   []Xattr
	Data     Data // a regular file's contents
	names    int  // the directory entries that name it
	// fixed marks nodes stamped with the file system's time (the root,
	// a made lost+found, /.ginit and its image.json).
	fixed bool

	children map[string]*Node // a directory's entries

	// set by the writer
	ino   uint32
	links uint32
}

// Type is the node's file type (S_IFMT bits).
func (n *Node) Type() uint32 { return n.Mode & typeMask }

// IsDir reports whether the node is a directory.
func (n *Node) IsDir() bool { return n.Type() == TypeDir }

// Child returns the entry name of directory n.
func (n *Node) Child(name string) *Node { return n.children[name] }

// Names returns the entry names of directory n, sorted.
func (n *Node) Names() []string {
	names := make([]string, 0, len(n.children))
	for k := range n.children {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Tree is a file system tree in memory, its file contents in an image.
type Tree struct {
	Root *Node
	File *ImageFile
	// Entries counts the tar entries read; Bytes the regular file bytes.
	Entries int
	Bytes   int64
	// MaxMtime is the newest mtime in the tree (for a default time).
	MaxMtime int64

	opt     Options
	touched map[*Node]map[string]bool // names the current layer wrote, by directory
	layer   bool
}

// Options tune how a tree is read.
type Options struct {
	// MaxBytes stops a stream whose regular files add up to more bytes
	// (holes counted) with rootfs.ErrTooLarge. 0 is no limit.
	MaxBytes int64
	// Warnf reports entries that are skipped. Nil discards.
	Warnf func(format string, args ...any)
}

// NewTree makes an empty tree whose file contents go to the image f (nil
// for a tree without files: a file system to format). The root is
// root-owned, 0755, and keeps that whatever the sources say, as the
// disk's own root inode does.
func NewTree(f *ImageFile, opt Options) *Tree {
	if opt.Warnf == nil {
		opt.Warnf = func(string, ...any) {}
	}
	root := &Node{Mode: TypeDir | 0o755, children: map[string]*Node{}, fixed: true, names: 1}
	return &Tree{Root: root, File: f, opt: opt, MaxMtime: -1 << 62}
}

// set names n name in directory d, dropping what the name held.
func (t *Tree) set(d *Node, name string, n *Node) {
	old := d.children[name]
	if old == n {
		return
	}
	d.children[name] = n
	n.names++
	if old != nil {
		t.drop(old)
	}
}

// remove removes name from directory d.
func (t *Tree) remove(d *Node, name string) {
	if old := d.children[name]; old != nil {
		delete(d.children, name)
		t.drop(old)
	}
}

// drop takes a name from n. A file left without one gives its blocks
// back, a directory its entries, in name order: the order blocks are given
// back in decides where later files go.
func (t *Tree) drop(n *Node) {
	n.names--
	if n.names > 0 {
		return
	}
	switch {
	case n.Type() == TypeReg && t.File != nil:
		t.File.release(&n.Data)
	case n.IsDir():
		for _, name := range n.Names() {
			t.drop(n.children[name])
		}
	}
}

// maxSymlinks is the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// lookupDir resolves the clean relative directory path dir, following
// symlinks within the tree as the kernel would inside a chroot at the
// root, creating missing directories (root-owned, 0755, mtime) when
// create is set. It returns the directory and its path from the root.
func (t *Tree) lookupDir(dir string, create bool, mtime int64) (*Node, string, error) {
	type step struct {
		n    *Node
		name string
	}
	stack := []step{{t.Root, ""}}
	pending := splitPath(dir)
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 1 {
				return nil, "", rootfs.ErrSymlinkEscape
			}
			stack = stack[:len(stack)-1]
			continue
		}
		cur := stack[len(stack)-1].n
		child := cur.children[c]
		switch {
		case child == nil && create:
			child = &Node{Mode: TypeDir | 0o755, Mtime: mtime, children: map[string]*Node{}}
			t.set(cur, c, child)
			t.noteMtime(mtime)
			stack = append(stack, step{child, c})
		case child == nil:
			return nil, "", fmt.Errorf("%s: %w", c, errNotExist)
		case child.IsDir():
			stack = append(stack, step{child, c})
		case child.Type() == TypeSymlink:
			links++
			if links > maxSymlinks {
				return nil, "", rootfs.ErrTooManyLinks
			}
			if strings.HasPrefix(child.Target, "/") {
				stack = stack[:1]
			}
			pending = append(splitPath(child.Target), pending...)
		default:
			return nil, "", rootfs.ErrNotDir
		}
	}
	names := make([]string, 0, len(stack)-1)
	for _, s := range stack[1:] {
		names = append(names, s.name)
	}
	p := strings.Join(names, "/")
	if p == "" {
		p = "."
	}
	return stack[len(stack)-1].n, p, nil
}

var errNotExist = errors.New("no such file or directory")

func splitPath(p string) []string { return strings.Split(strings.Trim(p, "/"), "/") }

// Lookup returns the node at the clean path p, following symlinks on the
// way and, with follow, at the end too; nil if there is none.
func (t *Tree) Lookup(p string, follow bool) *Node {
	clean, err := rootfs.CleanName(p)
	if err != nil {
		return nil
	}
	if clean == "." {
		return t.Root
	}
	for i := 0; i <= maxSymlinks; i++ {
		dir, base := path.Split(clean)
		d, rdir, err := t.lookupDir(dir, false, 0)
		if err != nil {
			return nil
		}
		n := d.children[base]
		if n == nil || !follow || n.Type() != TypeSymlink {
			return n
		}
		target := n.Target
		if !strings.HasPrefix(target, "/") {
			target = path.Join(rdir, target)
		}
		if clean, err = cleanTarget(target); err != nil {
			return nil
		}
		if clean == "." {
			return t.Root
		}
	}
	return nil
}

// cleanTarget cleans a symlink target resolved from the root, refusing one
// that climbs above it.
func cleanTarget(p string) (string, error) {
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", rootfs.ErrSymlinkEscape
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

func (t *Tree) noteMtime(m int64) {
	if m > t.MaxMtime {
		t.MaxMtime = m
	}
}

// touch records that the current layer wrote name in dir.
func (t *Tree) touch(dir *Node, name string) {
	m := t.touched[dir]
	if m == nil {
		m = map[string]bool{}
		t.touched[dir] = m
	}
	m[name] = true
}

func (t *Tree) wasTouched(dir *Node, name string) bool { return t.touched[dir][name] }

// touchPath records that the current layer wrote the directory at the
// resolved path p and every directory above it.
func (t *Tree) touchPath(p string) {
	if p == "." {
		return
	}
	n := t.Root
	for _, c := range strings.Split(p, "/") {
		t.touch(n, c)
		n = n.children[c]
		if n == nil || !n.IsDir() {
			return
		}
	}
}

// Apply reads one tar stream on top of the tree. With layer set it is an
// image layer: whiteout entries (.wh.NAME, .wh..wh..opq) remove what lower
// layers wrote instead of being written themselves. Errors name the entry
// in an *rootfs.EntryError, as rootfs's extractor does.
func (t *Tree) Apply(ctx context.Context, r io.Reader, layer bool) error {
	t.touched = map[*Node]map[string]bool{}
	t.layer = layer
	var whiteout func(*tar.Header) (bool, error)
	if layer {
		whiteout = t.whiteout
	}
	return rootfs.ReadTar(ctx, r, t.opt.MaxBytes, &t.Entries, whiteout, t.entry)
}

// whiteout applies a whiteout entry of a layer and reports whether hdr
// was one.
func (t *Tree) whiteout(hdr *tar.Header) (bool, error) {
	name, err := rootfs.CleanName(hdr.Name)
	if err != nil || strings.HasPrefix(hdr.Name, "/") {
		return false, nil // entry reports it
	}
	dir, base := path.Split(name)
	if !strings.HasPrefix(base, rootfs.WhiteoutPrefix) {
		return false, nil
	}
	fail := func(op string, err error) error { return &rootfs.EntryError{Name: hdr.Name, Op: op, Err: err} }
	d, rdir, err := t.lookupDir(dir, true, hdr.ModTime.Unix())
	if err != nil {
		return true, fail("resolving whiteout directory", err)
	}
	t.touchPath(rdir)
	switch {
	case base == rootfs.WhiteoutOpaque:
		t.opaque(d)
	case strings.HasPrefix(base, rootfs.WhiteoutPrefix+rootfs.WhiteoutPrefix):
		// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content.
	default:
		target := strings.TrimPrefix(base, rootfs.WhiteoutPrefix)
		if target == "" || target == "." || target == ".." {
			return true, fail("applying whiteout", rootfs.ErrWhiteout)
		}
		if !t.wasTouched(d, target) {
			t.remove(d, target)
		}
	}
	return true, nil
}

// opaque removes what lower layers put below directory d, keeping what
// the current layer wrote there.
func (t *Tree) opaque(d *Node) {
	for _, name := range d.Names() {
		if c := d.children[name]; !t.wasTouched(d, name) {
			t.remove(d, name)
		} else if c.IsDir() {
			t.opaque(c)
		}
	}
}

func (t *Tree) entry(hdr *tar.Header, r io.Reader) error {
	fail := func(op string, err error) error { return &rootfs.EntryError{Name: hdr.Name, Op: op, Err: err} }
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := rootfs.CleanName(hdr.Name)
	if err != nil {
		return fail("checking name", err)
	}
	if t.layer && strings.HasPrefix(hdr.Name, "/") {
		return fail("checking name", rootfs.ErrAbsolute)
	}
	if name == "." {
		return nil // the root keeps the disk's own root inode (0:0, 0755)
	}
	mtime := hdr.ModTime.Unix()
	n := &Node{UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), Mode: uint32(hdr.Mode) & 0o7777, Mtime: mtime}
	if hdr.Uid < 0 || hdr.Gid < 0 || int64(hdr.Uid) > 1<<32-1 || int64(hdr.Gid) > 1<<32-1 {
		return fail("checking owner", fmt.Errorf("uid %d, gid %d: out of range", hdr.Uid, hdr.Gid))
	}
	dir, base := path.Split(name)
	if len(base) > maxNameLen {
		return fail("checking name", fmt.Errorf("%w: %d bytes", ErrNameTooLong, len(base)))
	}
	d, rdir, err := t.lookupDir(dir, true, mtime)
	if err != nil {
		return fail("resolving parent directory", err)
	}
	if hdr.Typeflag != tar.TypeLink {
		if n.Xattrs, err = paxXattrs(hdr); err != nil {
			return fail("reading extended attributes", err)
		}
		if err := checkXattrs(n.Xattrs); err != nil {
			return fail("checking extended attributes", err)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		n.Mode |= TypeDir
		if old := d.children[base]; old != nil && old.IsDir() {
			// A directory again: new metadata, same entries.
			old.Mode, old.UID, old.GID, old.Mtime, old.Xattrs = n.Mode, n.UID, n.GID, n.Mtime, n.Xattrs
			n = old
		} else {
			n.children = map[string]*Node{}
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		n.Mode |= TypeReg
		if n.Data, err = t.File.Add(r, hdr.Size); err != nil {
			return fail("writing file", err)
		}
		t.Bytes += hdr.Size
	case tar.TypeSymlink:
		n.Mode |= TypeSymlink
		n.Target = hdr.Linkname
		if err := checkSymlink(n.Target); err != nil {
			return fail("checking symlink", err)
		}
	case tar.TypeLink:
		target, err := t.linkTarget(hdr.Linkname)
		if err != nil {
			return fail(fmt.Sprintf("resolving hard link target %q", hdr.Linkname), err)
		}
		if target == d.children[base] {
			t.touch(d, base)
			t.touchPath(rdir)
			return nil
		}
		if target.IsDir() {
			return fail("creating hard link", fmt.Errorf("target %q is a directory", hdr.Linkname))
		}
		n = target
	case tar.TypeChar, tar.TypeBlock:
		n.Mode |= TypeChar
		if hdr.Typeflag == tar.TypeBlock {
			n.Mode = n.Mode&^typeMask | TypeBlock
		}
		if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 1<<12-1 || hdr.Devminor > 1<<20-1 {
			return fail("checking device numbers", fmt.Errorf("%d:%d: out of range", hdr.Devmajor, hdr.Devminor))
		}
		n.Major, n.Minor = uint32(hdr.Devmajor), uint32(hdr.Devminor)
	case tar.TypeFifo:
		n.Mode |= TypeFifo
	default:
		t.opt.Warnf("tar entry %q: type %q not supported, skipped", hdr.Name, hdr.Typeflag)
		return nil
	}
	t.set(d, base, n)
	t.noteMtime(n.Mtime)
	t.touch(d, base)
	t.touchPath(rdir)
	return nil
}

// maxNameLen is the longest name an ext4 directory entry holds.
const maxNameLen = 255

// ErrNameTooLong: a name has more bytes than an ext4 directory entry holds.
var ErrNameTooLong = errors.New("name longer than 255 bytes")

// checkSymlink refuses targets ext4 cannot hold.
func checkSymlink(target string) error {
	switch {
	case target == "":
		return errors.New("empty target")
	case len(target) >= BlockSize:
		return fmt.Errorf("target of %d bytes: the most is %d", len(target), BlockSize-1)
	case strings.IndexByte(target, 0) >= 0:
		return errors.New("target holds a NUL byte")
	}
	return nil
}

// linkTarget resolves a hard link's target; its last component is not
// followed: a hard link to a symlink links the symlink, as link(2) does.
func (t *Tree) linkTarget(name string) (*Node, error) {
	clean, err := rootfs.CleanName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", rootfs.ErrHardlinkEscape, err)
	}
	if clean == "." {
		return nil, fmt.Errorf("%w: target is the root", rootfs.ErrHardlinkEscape)
	}
	dir, base := path.Split(clean)
	d, _, err := t.lookupDir(dir, false, 0)
	if errors.Is(err, rootfs.ErrSymlinkEscape) {
		return nil, fmt.Errorf("%w: %w", rootfs.ErrHardlinkEscape, err)
	}
	if err != nil {
		return nil, err
	}
	n := d.children[base]
	if n == nil {
		return nil, fmt.Errorf("%s: %w", clean, errNotExist)
	}
	return n, nil
}

// paxXattrs returns the entry's extended attributes (PAX SCHILY.xattr
// records), sorted by name.
func paxXattrs(hdr *tar.Header) ([]Xattr, error) {
	var out []Xattr
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && name != "" {
			out = append(out, Xattr{Name: name, Value: []byte(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Put adds (or replaces) a node at the clean path p, making missing
// parents with mtime; for files the caller adds to the tree itself.
func (t *Tree) Put(p string, n *Node) error {
	dir, base := path.Split(p)
	d, _, err := t.lookupDir(dir, true, n.Mtime)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if n.IsDir() && n.children == nil {
		n.children = map[string]*Node{}
	}
	t.set(d, base, n)
	t.noteMtime(n.Mtime)
	return nil
}

// NewDir returns a directory node.
func NewDir(perm uint32, uid, gid uint32, mtime int64) *Node {
	return &Node{Mode: TypeDir | perm&0o7777, UID: uid, GID: gid, Mtime: mtime, children: map[string]*Node{}}
}

// Fixed marks n as stamped with the file system's time throughout.
func (n *Node) Fixed() *Node { n.fixed = true; return n }
