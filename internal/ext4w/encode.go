package ext4w

import (
	"encoding/binary"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/csum"
)

var le = ext4fs.LE

// Directory entry file types.
func fileType(n *Node) byte {
	switch n.Type() {
	case TypeReg:
		return 1
	case TypeDir:
		return 2
	case TypeChar:
		return 3
	case TypeBlock:
		return 4
	case TypeFifo:
		return 5
	case TypeSocket:
		return 6
	case TypeSymlink:
		return 7
	}
	return 0
}

const dirRoom = BlockSize - ext4fs.DirTailLen // bytes for entries in a directory block

func direntLen(name string) int { return (8 + len(name) + 3) &^ 3 }

// dirLayout says where each block of directory d starts in its entries
// (".", "..", then the names sorted): linear blocks, each filled with as
// many entries as fit.
func dirLayout(d *Node) []int {
	names := d.Names()
	starts := []int{0}
	used := direntLen(".") + direntLen("..")
	for i, name := range names {
		l := direntLen(name)
		if used+l > dirRoom {
			starts = append(starts, i+2)
			used = 0
		}
		used += l
	}
	return starts
}

// dirBlocks encodes directory d (inode ino, parent inode parent) as
// blocks blocks.
func (pl *Plan) dirBlocks(d *Node, parent uint32, blocks int, seed uint32) [][]byte {
	names := d.Names()
	out := make([][]byte, 0, blocks)
	type ent struct {
		name string
		ino  uint32
		typ  byte
	}
	entry := func(i int) ent {
		switch i {
		case 0:
			return ent{".", d.ino, 2}
		case 1:
			return ent{"..", parent, 2}
		}
		c := d.children[names[i-2]]
		return ent{names[i-2], c.ino, fileType(c)}
	}
	starts := dirLayout(d)
	total := len(names) + 2
	iseed := csum.InodeSeed(seed, d.ino, 0)
	for bi := 0; bi < blocks; bi++ {
		b := make([]byte, BlockSize)
		off := 0
		if bi < len(starts) {
			end := total
			if bi+1 < len(starts) {
				end = starts[bi+1]
			}
			for i := starts[bi]; i < end; i++ {
				e := entry(i)
				rec := direntLen(e.name)
				if i == end-1 {
					rec = dirRoom - off
				}
				le.PutUint32(b[off:], e.ino)
				le.PutUint16(b[off+4:], uint16(rec))
				b[off+6] = byte(len(e.name))
				b[off+7] = e.typ
				copy(b[off+8:], e.name)
				off += rec
			}
		} else {
			le.PutUint16(b[4:], dirRoom) // an empty block: one unused entry
		}
		tail := b[dirRoom:]
		le.PutUint16(tail[4:], ext4fs.DirTailLen)
		tail[7] = ext4fs.DirTailFileType
		le.PutUint32(tail[8:], csum.CRC32c(iseed, b[:dirRoom]))
		out = append(out, b)
	}
	return out
}

// Extent trees (fs/ext4/ext4_extents.h): a 12-byte header, then 12-byte
// entries; a tree block ends with a checksum.
const (
	extentsPerBlock = (BlockSize - 12 - 4) / 12 // 340
	extentsInInode  = 4
)

// treeBlocks is the tree blocks n extents need beyond the inode.
func treeBlocks(n int) int {
	if n <= extentsInInode {
		return 0
	}
	total := 0
	for n > extentsInInode {
		n = (n + extentsPerBlock - 1) / extentsPerBlock
		total += n
	}
	return total
}

func putExtentHeader(b []byte, entries, maxEntries, depth int) {
	le.PutUint16(b[0:], ext4fs.ExtentMagic)
	le.PutUint16(b[2:], uint16(entries))
	le.PutUint16(b[4:], uint16(maxEntries))
	le.PutUint16(b[6:], uint16(depth))
	le.PutUint32(b[8:], 0)
}

type treeEntry struct {
	lblk uint32
	at   uint64
}

// extentTree encodes extents ext into the inode's i_block (60 bytes) and
// the tree blocks at treeAt, checksummed for inode ino.
func extentTree(iblock []byte, ext []fext, treeAt []uint64, iseed uint32) (blocks [][]byte) {
	if len(ext) <= extentsInInode {
		putExtentHeader(iblock, len(ext), extentsInInode, 0)
		for i, e := range ext {
			putExtent(iblock[12+12*i:], e)
		}
		return nil
	}
	newBlock := func(entries, depth int) []byte {
		b := make([]byte, BlockSize)
		putExtentHeader(b, entries, extentsPerBlock, depth)
		return b
	}
	seal := func(b []byte) {
		off := 12 + 12*extentsPerBlock
		le.PutUint32(b[off:], csum.CRC32c(iseed, b[:off]))
	}
	next := 0
	var level []treeEntry
	for i := 0; i < len(ext); i += extentsPerBlock {
		chunk := ext[i:min(i+extentsPerBlock, len(ext))]
		b := newBlock(len(chunk), 0)
		for j, e := range chunk {
			putExtent(b[12+12*j:], e)
		}
		seal(b)
		level = append(level, treeEntry{chunk[0].lblk, treeAt[next]})
		next++
		blocks = append(blocks, b)
	}
	depth := 1
	for len(level) > extentsInInode {
		var up []treeEntry
		for i := 0; i < len(level); i += extentsPerBlock {
			chunk := level[i:min(i+extentsPerBlock, len(level))]
			b := newBlock(len(chunk), depth)
			for j, e := range chunk {
				putIndex(b[12+12*j:], e)
			}
			seal(b)
			up = append(up, treeEntry{chunk[0].lblk, treeAt[next]})
			next++
			blocks = append(blocks, b)
		}
		level = up
		depth++
	}
	putExtentHeader(iblock, len(level), extentsInInode, depth)
	for i, e := range level {
		putIndex(iblock[12+12*i:], e)
	}
	return blocks
}

func putExtent(b []byte, e fext) {
	le.PutUint32(b[0:], e.lblk)
	le.PutUint16(b[4:], uint16(e.n))
	le.PutUint16(b[6:], uint16(e.pblk>>32))
	le.PutUint32(b[8:], uint32(e.pblk))
}

func putIndex(b []byte, e treeEntry) {
	le.PutUint32(b[0:], e.lblk)
	le.PutUint32(b[4:], uint32(e.at))
	le.PutUint16(b[8:], uint16(e.at>>32))
}

// Inode fields ext4fs does not name.
const (
	inoBlocksHi  = 0x74
	inoFileACLLo = 0x68
	inoFileACLHi = 0x76
	inodeFlagIdx = 0x1000
)

// clampTime keeps a time within what ext4's 34-bit seconds hold
// (1901 to 2446).
func clampTime(t int64) int64 {
	return min(max(t, -1<<31), 1<<31-1+3<<32)
}

// putTimes stamps an inode: atime, ctime and mtime m, crtime c.
func putTimes(b []byte, m, c int64) {
	m, c = clampTime(m), clampTime(c)
	for _, off := range [][2]int{{ext4fs.InoAtime, ext4fs.InoAtimeExtra}, {ext4fs.InoCtime, ext4fs.InoCtimeExtra}, {ext4fs.InoMtime, ext4fs.InoMtimeExtra}} {
		le.PutUint32(b[off[0]:], uint32(m))
		le.PutUint32(b[off[1]:], ext4fs.ExtraTime(m, 0))
	}
	le.PutUint32(b[ext4fs.InoCrtime:], uint32(c))
	le.PutUint32(b[ext4fs.InoCrtimeExtra:], ext4fs.ExtraTime(c, 0))
}

// putBlocks sets i_blocks, in 512-byte sectors.
func putBlocks(b []byte, blocks uint64) {
	sectors := blocks * (BlockSize / 512)
	le.PutUint32(b[ext4fs.InoBlocksLo:], uint32(sectors))
	le.PutUint16(b[inoBlocksHi:], uint16(sectors>>32))
}

func putSize(b []byte, size uint64) {
	le.PutUint32(b[ext4fs.InoSizeLo:], uint32(size))
	le.PutUint32(b[ext4fs.InoSizeHi:], uint32(size>>32))
}

// newDevEncoding is the kernel's new_encode_dev, as ext4 stores it in
// i_block[1].
func newDevEncoding(major, minor uint32) uint32 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// journalSuperblock is the journal's first block (jbd2, big-endian): an
// empty journal, with nothing to replay (s_start 0).
func journalSuperblock(blocks uint32, uuid [16]byte) []byte {
	be := binary.BigEndian
	b := make([]byte, BlockSize)
	be.PutUint32(b[0x00:], ext4fs.JBD2Magic)
	be.PutUint32(b[0x04:], ext4fs.JBD2SuperblockV2)
	be.PutUint32(b[0x0C:], BlockSize)
	be.PutUint32(b[0x10:], blocks) // s_maxlen
	be.PutUint32(b[0x14:], 1)      // s_first: the block after this one
	be.PutUint32(b[0x18:], 1)      // s_sequence
	copy(b[0x30:0x40], uuid[:])
	be.PutUint32(b[0x40:], 1) // s_nr_users
	return b
}
