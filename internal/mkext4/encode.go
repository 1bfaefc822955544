package mkext4

import (
	"encoding/binary"
	"hash/crc32"
	"time"
)

// On-disk constants from the kernel's fs/ext4/ext4.h and fs/jbd2.
const (
	// s_feature_compat
	compatHasJournal = 0x4
	compatExtAttr    = 0x8
	compatDirIndex   = 0x20
	// s_feature_incompat
	incompatFiletype = 0x2
	incompatExtents  = 0x40
	incompat64bit    = 0x80
	incompatFlexBG   = 0x200
	// s_feature_ro_compat
	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatHugeFile     = 0x8
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatMetadataCsum = 0x400

	bgInodeUninit = 0x1
	bgBlockUninit = 0x2

	inodeFlagExtents = 0x80000
	extentMagic      = 0xF30A
	extraIsize       = 32 // the fields past 128 bytes that the kernel knows

	fileTypeDir = 2
)

var le = binary.LittleEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c continues a checksum the way ext4 does (the kernel's crc32c_le:
// no inversion on the way in or out, unlike hash/crc32's Update).
func crc32c(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

func crc32cUint32(crc, v uint32) uint32 {
	return crc32c(crc, le.AppendUint32(nil, v))
}

// fsImage is one file system being written.
type fsImage struct {
	layout
	opts     Options
	hashSeed [16]byte
}

// csumSeed seeds every metadata checksum: the crc32c of the UUID.
func (fs *fsImage) csumSeed() uint32 { return crc32c(^uint32(0), fs.opts.UUID[:]) }

// inodeSeed seeds the checksums of an inode and its directory blocks.
func (fs *fsImage) inodeSeed(ino uint32) uint32 {
	const generation = 0
	return crc32cUint32(crc32cUint32(fs.csumSeed(), ino), generation)
}

// ext4 keeps seconds in 32 bits, and in the superblock one more byte.
func lo32(t int64) uint32 { return uint32(t) }
func hi8(t int64) uint8   { return uint8(t >> 32) }

// extraTime is an inode's *_extra field: nanoseconds and the epoch bits
// that extend the signed 32-bit seconds.
func extraTime(t time.Time) uint32 {
	sec := t.Unix()
	epoch := uint32((sec-int64(int32(sec)))>>32) & 3
	return uint32(t.Nanosecond())<<2 | epoch
}

// superblock is the 1024-byte superblock as it is in group g.
func (fs *fsImage) superblock(g uint32, freeBlocks uint64, freeInodes uint32) []byte {
	l, o := &fs.layout, &fs.opts
	now := o.Time.Unix()
	sb := make([]byte, 1024)
	inodes := l.inodesPerGroup * l.groups
	reserved := l.blocks / 20 // mke2fs's 5% for root
	le.PutUint32(sb[0x00:], inodes)
	le.PutUint32(sb[0x04:], uint32(l.blocks))
	le.PutUint32(sb[0x08:], uint32(reserved))
	le.PutUint32(sb[0x0C:], uint32(freeBlocks))
	le.PutUint32(sb[0x10:], freeInodes)
	le.PutUint32(sb[0x14:], 0) // s_first_data_block: 0 with 4 KiB blocks
	le.PutUint32(sb[0x18:], 2) // log2(block size) - 10
	le.PutUint32(sb[0x1C:], 2) // cluster size: no bigalloc
	le.PutUint32(sb[0x20:], blocksPerGroup)
	le.PutUint32(sb[0x24:], blocksPerGroup)
	le.PutUint32(sb[0x28:], l.inodesPerGroup)
	le.PutUint32(sb[0x30:], lo32(now)) // s_wtime
	le.PutUint16(sb[0x36:], 0xFFFF)    // s_max_mnt_count: no periodic fsck
	le.PutUint16(sb[0x38:], 0xEF53)
	le.PutUint16(sb[0x3A:], 1)         // s_state: clean
	le.PutUint16(sb[0x3C:], 1)         // s_errors: continue
	le.PutUint32(sb[0x40:], lo32(now)) // s_lastcheck
	le.PutUint32(sb[0x4C:], 1)         // s_rev_level: dynamic
	le.PutUint32(sb[0x54:], lostFoundIno)
	le.PutUint16(sb[0x58:], inodeSize)
	le.PutUint16(sb[0x5A:], uint16(g))
	le.PutUint32(sb[0x5C:], compatHasJournal|compatExtAttr|compatDirIndex)
	le.PutUint32(sb[0x60:], incompatFiletype|incompatExtents|incompat64bit|incompatFlexBG)
	le.PutUint32(sb[0x64:], roCompatSparseSuper|roCompatLargeFile|roCompatHugeFile|
		roCompatDirNlink|roCompatExtraIsize|roCompatMetadataCsum)
	copy(sb[0x68:0x78], o.UUID[:])
	copy(sb[0x78:0x88], o.Label)
	le.PutUint32(sb[0xE0:], journalIno)
	copy(sb[0xEC:0xFC], fs.hashSeed[:])
	sb[0xFC] = 1 // s_def_hash_version: half_md4
	sb[0xFD] = 1 // s_jnl_backup_type: s_jnl_blocks holds the journal's i_block
	le.PutUint16(sb[0xFE:], descSize)
	le.PutUint32(sb[0x100:], 0x4|0x8)   // s_default_mount_opts: user_xattr, acl
	le.PutUint32(sb[0x108:], lo32(now)) // s_mkfs_time
	journal := fs.journalInode()
	copy(sb[0x10C:0x148], journal[0x28:0x64])           // s_jnl_blocks[0:15]: i_block
	le.PutUint32(sb[0x148:], le.Uint32(journal[0x6C:])) // [15]: i_size_high
	le.PutUint32(sb[0x14C:], le.Uint32(journal[0x04:])) // [16]: i_size
	le.PutUint32(sb[0x150:], uint32(l.blocks>>32))
	le.PutUint32(sb[0x154:], uint32(reserved>>32))
	le.PutUint32(sb[0x158:], uint32(freeBlocks>>32))
	le.PutUint16(sb[0x15C:], extraIsize)           // s_min_extra_isize
	le.PutUint16(sb[0x15E:], extraIsize)           // s_want_extra_isize
	le.PutUint32(sb[0x160:], 1)                    // s_flags: signed directory hash, as on x86
	sb[0x174] = 4                                  // log2(groupsPerFlex)
	sb[0x175] = 1                                  // s_checksum_type: crc32c
	le.PutUint32(sb[0x248:], uint32(l.overhead())) // s_overhead_clusters, or the kernel counts them at mount
	sb[0x274] = hi8(now)                           // s_wtime_hi
	sb[0x276] = hi8(now)                           // s_mkfs_time_hi
	sb[0x277] = hi8(now)                           // s_lastcheck_hi
	le.PutUint32(sb[0x3FC:], crc32c(^uint32(0), sb[:0x3FC]))
	return sb
}

// groupDesc is what a group descriptor says about the group's contents.
type groupDesc struct {
	flags           uint16
	freeBlocks      uint64
	freeInodes      uint32 // all past the used ones, so also bg_itable_unused
	dirs            uint32
	blockBitmapCsum uint32
	inodeBitmapCsum uint32
}

// encodeDesc is group g's 64-byte descriptor.
func (fs *fsImage) encodeDesc(g uint32, gd groupDesc) []byte {
	l := &fs.layout
	d := make([]byte, descSize)
	put := func(lo, hi int, v uint64) { // a field split in 32-bit halves
		le.PutUint32(d[lo:], uint32(v))
		le.PutUint32(d[hi:], uint32(v>>32))
	}
	put16 := func(lo, hi int, v uint32) { // a field split in 16-bit halves
		le.PutUint16(d[lo:], uint16(v))
		le.PutUint16(d[hi:], uint16(v>>16))
	}
	put(0x00, 0x20, l.blockBitmap(g))
	put(0x04, 0x24, l.inodeBitmap(g))
	put(0x08, 0x28, l.inodeTable(g))
	put16(0x0C, 0x2C, uint32(gd.freeBlocks))
	put16(0x0E, 0x2E, gd.freeInodes)
	put16(0x10, 0x30, gd.dirs)
	le.PutUint16(d[0x12:], gd.flags)
	put16(0x18, 0x38, gd.blockBitmapCsum)
	put16(0x1A, 0x3A, gd.inodeBitmapCsum)
	put16(0x1C, 0x32, gd.freeInodes) // bg_itable_unused
	c := crc32cUint32(fs.csumSeed(), g)
	c = crc32c(c, d) // bg_checksum (0x1E) is still zero here
	le.PutUint16(d[0x1E:], uint16(c))
	return d
}

// newInode is an inode with its times set, not yet checksummed.
func (fs *fsImage) newInode(mode uint16, links uint16, size uint64) []byte {
	t := fs.opts.Time
	b := make([]byte, inodeSize)
	le.PutUint16(b[0x00:], mode)
	le.PutUint32(b[0x04:], uint32(size))
	le.PutUint32(b[0x6C:], uint32(size>>32))
	for _, off := range []int{0x08, 0x0C, 0x10, 0x90} { // atime, ctime, mtime, crtime
		le.PutUint32(b[off:], lo32(t.Unix()))
	}
	for _, off := range []int{0x84, 0x88, 0x8C, 0x94} { // their _extra
		le.PutUint32(b[off:], extraTime(t))
	}
	le.PutUint16(b[0x1A:], links)
	le.PutUint16(b[0x80:], extraIsize)
	return b
}

// setExtent makes b's data one extent of n blocks from start, held in the
// inode itself (an extent tree of depth 0).
func setExtent(b []byte, start uint64, n uint32) {
	le.PutUint32(b[0x1C:], n*blockSize/512) // i_blocks, in sectors
	le.PutUint32(b[0x20:], inodeFlagExtents)
	e := b[0x28:0x64]
	le.PutUint16(e[0:], extentMagic)
	le.PutUint16(e[2:], 1) // entries
	le.PutUint16(e[4:], 4) // the most that fit in i_block
	le.PutUint16(e[6:], 0) // depth
	le.PutUint32(e[12:], 0)
	le.PutUint16(e[16:], uint16(n))
	le.PutUint16(e[18:], uint16(start>>32))
	le.PutUint32(e[20:], uint32(start))
}

// setInodeChecksum stores the crc32c of inode ino, taken with its checksum
// fields zero; the high half only if the inode has room for it.
func (fs *fsImage) setInodeChecksum(b []byte, ino uint32) {
	hasHi := le.Uint16(b[0x80:]) >= 4
	le.PutUint16(b[0x7C:], 0)
	if hasHi {
		le.PutUint16(b[0x82:], 0)
	}
	c := crc32c(fs.inodeSeed(ino), b)
	le.PutUint16(b[0x7C:], uint16(c))
	if hasHi {
		le.PutUint16(b[0x82:], uint16(c>>16))
	}
}

func (fs *fsImage) rootInode() []byte {
	b := fs.newInode(0o040755, 3, blockSize) // ., .. and lost+found's ..
	setExtent(b, fs.rootDir, 1)
	fs.setInodeChecksum(b, rootIno)
	return b
}

func (fs *fsImage) lostFoundInode() []byte {
	b := fs.newInode(0o040700, 2, lostFoundBlocks*blockSize)
	setExtent(b, fs.lostFound, lostFoundBlocks)
	fs.setInodeChecksum(b, lostFoundIno)
	return b
}

func (fs *fsImage) journalInode() []byte {
	b := fs.newInode(0o100600, 1, uint64(fs.journalBlocks)*blockSize)
	setExtent(b, fs.journal, fs.journalBlocks)
	fs.setInodeChecksum(b, journalIno)
	return b
}

// inodeTableStart is the first block of group 0's inode table: inodes 1
// to 16. Reserved inodes other than the root and the journal are zero but
// for their checksum, and the bad blocks inode's times, as mke2fs has them.
func (fs *fsImage) inodeTableStart() []byte {
	blk := make([]byte, blockSize)
	for ino := uint32(1); ino <= lostFoundIno; ino++ {
		var b []byte
		switch ino {
		case rootIno:
			b = fs.rootInode()
		case journalIno:
			b = fs.journalInode()
		case lostFoundIno:
			b = fs.lostFoundInode()
		default:
			b = make([]byte, inodeSize)
			if ino == 1 {
				for _, off := range []int{0x08, 0x0C, 0x10} {
					le.PutUint32(b[off:], lo32(fs.opts.Time.Unix()))
				}
			}
			fs.setInodeChecksum(b, ino)
		}
		copy(blk[(ino-1)*inodeSize:], b)
	}
	return blk
}

// dirBlock lays out directory entries in one block, the last one taking
// the rest of the block, and ends the block with the checksum entry.
func (fs *fsImage) dirBlock(dirIno uint32, names []string, inos []uint32) []byte {
	const tailLen = 12
	b := make([]byte, blockSize)
	off := 0
	for i, name := range names {
		recLen := (8 + len(name) + 3) &^ 3
		if i == len(names)-1 {
			recLen = blockSize - tailLen - off
		}
		le.PutUint32(b[off:], inos[i])
		le.PutUint16(b[off+4:], uint16(recLen))
		b[off+6] = byte(len(name))
		b[off+7] = fileTypeDir
		copy(b[off+8:], name)
		off += recLen
	}
	if len(names) == 0 { // an empty block: one unused entry
		le.PutUint16(b[4:], blockSize-tailLen)
	}
	tail := b[blockSize-tailLen:]
	le.PutUint16(tail[4:], tailLen)
	tail[7] = 0xDE // the checksum entry's file type
	le.PutUint32(tail[8:], crc32c(fs.inodeSeed(dirIno), b[:blockSize-tailLen]))
	return b
}

// journalSuperblock is the journal's first block (jbd2, big-endian): an
// empty journal, with nothing to replay (s_start 0).
func (fs *fsImage) journalSuperblock() []byte {
	be := binary.BigEndian
	b := make([]byte, blockSize)
	be.PutUint32(b[0x00:], 0xC03B3998) // magic
	be.PutUint32(b[0x04:], 4)          // superblock, version 2
	be.PutUint32(b[0x0C:], blockSize)
	be.PutUint32(b[0x10:], fs.journalBlocks) // s_maxlen
	be.PutUint32(b[0x14:], 1)                // s_first: the block after this one
	be.PutUint32(b[0x18:], 1)                // s_sequence
	copy(b[0x30:0x40], fs.opts.UUID[:])
	be.PutUint32(b[0x40:], 1) // s_nr_users
	return b
}
