package ext4w

import (
	"crypto/sha256"
	"fmt"
	"hash"
)

// Digest hashes the tree: every path with its metadata, link target,
// device numbers, attributes, and file size and (with contents) the
// sha256 the spool took of it; a hard link names its first path. seed
// starts the hash. Equal trees give equal digests.
func (t *Tree) Digest(seed []byte, contents bool) [32]byte {
	h := sha256.New()
	h.Write(seed)
	seen := map[*Node]string{}
	digestDir(h, t.Root, "", seen, contents)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func digestDir(h hash.Hash, d *Node, dir string, seen map[*Node]string, contents bool) {
	for _, name := range d.Names() {
		n := d.children[name]
		p := dir + "/" + name
		fmt.Fprintf(h, "%q %o %d %d %d", p, n.Mode, n.UID, n.GID, n.Mtime)
		if first, ok := seen[n]; ok {
			fmt.Fprintf(h, " link %q\n", first)
			continue
		}
		seen[n] = p
		switch n.Type() {
		case TypeReg:
			fmt.Fprintf(h, " %d", n.Data.Size)
			if contents {
				fmt.Fprintf(h, " %x", n.Data.Sum)
			}
		case TypeSymlink:
			fmt.Fprintf(h, " -> %q", n.Target)
		case TypeChar, TypeBlock:
			fmt.Fprintf(h, " %d,%d", n.Major, n.Minor)
		}
		for _, x := range n.Xattrs {
			fmt.Fprintf(h, " x %q %q", x.Name, x.Value)
		}
		fmt.Fprintln(h)
		if n.IsDir() {
			digestDir(h, n, p, seen, contents)
		}
	}
}

// Stats counts the tree's inodes (hard links once, the root left out) and
// the bytes of its regular files, and finds its newest mtime (0 for an
// empty tree).
func (t *Tree) Stats() (inodes, bytes, newest int64) {
	seen := map[*Node]bool{}
	var walk func(d *Node)
	walk = func(d *Node) {
		for _, n := range d.children {
			if seen[n] {
				continue
			}
			seen[n] = true
			inodes++
			newest = max(newest, n.Mtime)
			if n.Type() == TypeReg {
				bytes += n.Data.Size
			}
			if n.IsDir() {
				walk(n)
			}
		}
	}
	walk(t.Root)
	return inodes, bytes, newest
}
