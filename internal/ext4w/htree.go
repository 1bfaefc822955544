package ext4w

import (
	"math/bits"
	"sort"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/csum"
)

// A directory of more than one block is indexed (dir_index, an htree) as
// the kernel indexes one that grows past a block: a root block that holds
// "." and ".." and an index of hash ranges, leaf blocks of entries ordered
// by the hash of their names, and, past what the root indexes, one level
// of index nodes. Names are hashed with half_md4 and the file system's
// seed; their bytes count as signed, as s_flags says.

const (
	dxRootEntries  = (BlockSize - 32 - 8) / 8 // after the root's header, before the checksum tail
	dxNodeEntries  = (BlockSize - 8 - 8) / 8
	dxHashHalfMD4  = 1
	inodeFlagIndex = 0x1000
)

// dxLeaf is one leaf: entries [start, end) of the hashed order, and the
// index key that leads to it.
type dxLeaf struct {
	start, end int
	key        uint32
}

// dxDir is an indexed directory's layout.
type dxDir struct {
	names  []string // in hash order
	hashes []uint32
	leaves []dxLeaf
	nodes  [][2]int // with a second level: the leaves [from, to) of each node
}

func (x *dxDir) blocks() int { return 1 + len(x.leaves) + len(x.nodes) }

// dxLayout indexes directory d's entries with the hash seed.
func dxLayout(d *Node, seed [4]uint32) *dxDir {
	names := d.Names()
	x := &dxDir{names: names, hashes: make([]uint32, len(names))}
	for i, n := range names {
		x.hashes[i] = dxHash(n, seed)
	}
	sort.Stable(byHash{x})
	used := 0
	for i, n := range x.names {
		l := direntLen(n)
		if len(x.leaves) == 0 || used+l > dirRoom {
			key := x.hashes[i]
			if i > 0 && x.hashes[i-1] == key {
				key |= 1 // the same hash goes on from the leaf before
			}
			if len(x.leaves) > 0 {
				x.leaves[len(x.leaves)-1].end = i
			}
			x.leaves = append(x.leaves, dxLeaf{start: i, key: key})
			used = 0
		}
		used += l
	}
	x.leaves[len(x.leaves)-1].end = len(names)
	if len(x.leaves) > dxRootEntries {
		for i := 0; i < len(x.leaves); i += dxNodeEntries {
			x.nodes = append(x.nodes, [2]int{i, min(i+dxNodeEntries, len(x.leaves))})
		}
	}
	return x
}

type byHash struct{ x *dxDir }

func (b byHash) Len() int           { return len(b.x.names) }
func (b byHash) Less(i, j int) bool { return b.x.hashes[i] < b.x.hashes[j] }
func (b byHash) Swap(i, j int) {
	b.x.names[i], b.x.names[j] = b.x.names[j], b.x.names[i]
	b.x.hashes[i], b.x.hashes[j] = b.x.hashes[j], b.x.hashes[i]
}

// maxDxLeaves: more leaves than two index levels reach need
// largedir, which the file systems here do not have.
const maxDxLeaves = dxRootEntries * dxNodeEntries

// dxBlocks encodes an indexed directory: the root, the leaves, then the
// index nodes.
func (pl *Plan) dxBlocks(d *Node, parent uint32, x *dxDir, iseed uint32) [][]byte {
	out := make([][]byte, 0, x.blocks())
	root := make([]byte, BlockSize)
	le.PutUint32(root[0:], d.ino)
	le.PutUint16(root[4:], 12)
	root[6], root[7] = 1, ext4fs.FileTypeDir
	copy(root[8:], ".")
	le.PutUint32(root[12:], parent)
	le.PutUint16(root[16:], BlockSize-12)
	root[18], root[19] = 2, ext4fs.FileTypeDir
	copy(root[20:], "..")
	root[24+4] = dxHashHalfMD4
	root[24+5] = 8 // info_length
	leafBlock := func(i int) uint32 { return uint32(1 + i) }
	if x.nodes == nil {
		keys := make([]dxEntry, len(x.leaves))
		for i, l := range x.leaves {
			keys[i] = dxEntry{l.key, leafBlock(i)}
		}
		putDxEntries(root, 32, dxRootEntries, keys, iseed)
	} else {
		root[24+6] = 1 // indirect_levels
		keys := make([]dxEntry, len(x.nodes))
		for i, n := range x.nodes {
			keys[i] = dxEntry{x.leaves[n[0]].key, uint32(1 + len(x.leaves) + i)}
		}
		putDxEntries(root, 32, dxRootEntries, keys, iseed)
	}
	out = append(out, root)
	for _, l := range x.leaves {
		b := make([]byte, BlockSize)
		off := 0
		for i := l.start; i < l.end; i++ {
			name := x.names[i]
			c := d.children[name]
			rec := direntLen(name)
			if i == l.end-1 {
				rec = dirRoom - off
			}
			le.PutUint32(b[off:], c.ino)
			le.PutUint16(b[off+4:], uint16(rec))
			b[off+6] = byte(len(name))
			b[off+7] = fileType(c)
			copy(b[off+8:], name)
			off += rec
		}
		sealDirBlock(b, iseed)
		out = append(out, b)
	}
	for _, n := range x.nodes {
		b := make([]byte, BlockSize)
		le.PutUint16(b[4:], BlockSize) // an empty entry over the whole block
		keys := make([]dxEntry, 0, n[1]-n[0])
		for i := n[0]; i < n[1]; i++ {
			keys = append(keys, dxEntry{x.leaves[i].key, leafBlock(i)})
		}
		putDxEntries(b, 8, dxNodeEntries, keys, iseed)
		out = append(out, b)
	}
	return out
}

type dxEntry struct {
	key   uint32
	block uint32
}

// putDxEntries writes an index's count, limit and entries at off (the
// first entry's key is implied: its place holds limit and count), and the
// checksum tail after limit entries.
func putDxEntries(b []byte, off, limit int, es []dxEntry, iseed uint32) {
	le.PutUint16(b[off:], uint16(limit))
	le.PutUint16(b[off+2:], uint16(len(es)))
	for i, e := range es {
		if i > 0 {
			le.PutUint32(b[off+8*i:], e.key)
		}
		le.PutUint32(b[off+8*i+4:], e.block)
	}
	tail := off + 8*limit
	c := csum.CRC32c(iseed, b[:off+8*len(es)])
	c = csum.CRC32c(c, b[tail:tail+4])
	c = csum.CRC32c(c, []byte{0, 0, 0, 0})
	le.PutUint32(b[tail+4:], c)
}

// sealDirBlock writes a leaf block's checksum entry.
func sealDirBlock(b []byte, iseed uint32) {
	tail := b[dirRoom:]
	le.PutUint16(tail[4:], ext4fs.DirTailLen)
	tail[7] = ext4fs.DirTailFileType
	le.PutUint32(tail[8:], csum.CRC32c(iseed, b[:dirRoom]))
}

// hashSeed is the superblock's s_hash_seed as the hash takes it; all
// zeros means the default.
func hashSeed(s [16]byte) [4]uint32 {
	var out [4]uint32
	zero := true
	for i := range out {
		out[i] = le.Uint32(s[4*i:])
		zero = zero && out[i] == 0
	}
	if zero {
		return [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	}
	return out
}

// dxHash is ext4's half_md4 name hash (signed bytes), the major hash with
// its low bit clear.
func dxHash(name string, seed [4]uint32) uint32 {
	buf := seed
	var in [8]uint32
	p := []byte(name)
	for n := len(p); ; {
		str2hashbuf(p, n, in[:])
		halfMD4(&buf, &in)
		if n <= 32 {
			break
		}
		n -= 32
		p = p[32:]
	}
	h := buf[1] &^ 1
	if h == 0x7fffffff<<1 {
		h = (0x7fffffff - 1) << 1
	}
	return h
}

// str2hashbuf packs up to 32 bytes of msg (of len bytes left) into in,
// padded with the length, bytes taken as signed.
func str2hashbuf(msg []byte, n int, in []uint32) {
	num := len(in)
	pad := uint32(n) | uint32(n)<<8
	pad |= pad << 16
	val := pad
	if n > num*4 {
		n = num * 4
	}
	k := 0
	for i := 0; i < n; i++ {
		val = uint32(int32(int8(msg[i]))) + val<<8
		if i%4 == 3 {
			in[k] = val
			k++
			val = pad
			num--
		}
	}
	if num--; num >= 0 {
		in[k] = val
		k++
	}
	for num--; num >= 0; num-- {
		in[k] = pad
		k++
	}
}

func halfMD4(buf *[4]uint32, in *[8]uint32) {
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	const k2, k3 = 0o13240474631, 0o15666365641
	round := func(fn func(x, y, z uint32) uint32, a *uint32, b, c, d, x uint32, s int) {
		*a = bits.RotateLeft32(*a+fn(b, c, d)+x, s)
	}
	round(f, &a, b, c, d, in[0], 3)
	round(f, &d, a, b, c, in[1], 7)
	round(f, &c, d, a, b, in[2], 11)
	round(f, &b, c, d, a, in[3], 19)
	round(f, &a, b, c, d, in[4], 3)
	round(f, &d, a, b, c, in[5], 7)
	round(f, &c, d, a, b, in[6], 11)
	round(f, &b, c, d, a, in[7], 19)

	round(g, &a, b, c, d, in[1]+k2, 3)
	round(g, &d, a, b, c, in[3]+k2, 5)
	round(g, &c, d, a, b, in[5]+k2, 9)
	round(g, &b, c, d, a, in[7]+k2, 13)
	round(g, &a, b, c, d, in[0]+k2, 3)
	round(g, &d, a, b, c, in[2]+k2, 5)
	round(g, &c, d, a, b, in[4]+k2, 9)
	round(g, &b, c, d, a, in[6]+k2, 13)

	round(h, &a, b, c, d, in[3]+k3, 3)
	round(h, &d, a, b, c, in[7]+k3, 9)
	round(h, &c, d, a, b, in[2]+k3, 11)
	round(h, &b, c, d, a, in[6]+k3, 15)
	round(h, &a, b, c, d, in[1]+k3, 3)
	round(h, &d, a, b, c, in[5]+k3, 9)
	round(h, &c, d, a, b, in[0]+k3, 11)
	round(h, &b, c, d, a, in[4]+k3, 15)

	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}
