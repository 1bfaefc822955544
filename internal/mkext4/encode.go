package mkext4

import (
	"encoding/binary"
	"time"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/csum"
)

var le = ext4fs.LE

// fsImage is one file system being written.
type fsImage struct {
	layout
	opts     Options
	hashSeed [16]byte
}

// csumSeed seeds every metadata checksum.
func (fs *fsImage) csumSeed() uint32 { return csum.Seed(fs.opts.UUID) }

// ext4 keeps seconds in 32 bits, and in the superblock one more byte.
func lo32(t int64) uint32 { return uint32(t) }
func hi8(t int64) uint8   { return uint8(t >> 32) }

func extraTime(t time.Time) uint32 { return ext4fs.ExtraTime(t.Unix(), uint32(t.Nanosecond())) }

// superblock is the 1024-byte superblock as it is in group g.
func (fs *fsImage) superblock(g uint32, freeBlocks uint64, freeInodes uint32) []byte {
	l, o := &fs.layout, &fs.opts
	now := o.Time.Unix()
	sb := make([]byte, ext4fs.SuperSize)
	inodes := l.inodesPerGroup * l.groups
	reserved := l.blocks / 20 // mke2fs's 5% for root
	le.PutUint32(sb[ext4fs.SbInodesCount:], inodes)
	le.PutUint32(sb[ext4fs.SbBlocksCountLo:], uint32(l.blocks))
	le.PutUint32(sb[ext4fs.SbRBlocksCountLo:], uint32(reserved))
	le.PutUint32(sb[ext4fs.SbFreeBlocksLo:], uint32(freeBlocks))
	le.PutUint32(sb[ext4fs.SbFreeInodes:], freeInodes)
	le.PutUint32(sb[ext4fs.SbFirstDataBlock:], 0) // 0 with 4 KiB blocks
	le.PutUint32(sb[ext4fs.SbLogBlockSize:], 2)   // log2(block size) - 10
	le.PutUint32(sb[ext4fs.SbLogClusterSize:], 2) // no bigalloc
	le.PutUint32(sb[ext4fs.SbBlocksPerGroup:], ext4fs.BlocksPerGroup)
	le.PutUint32(sb[ext4fs.SbClustersPerGroup:], ext4fs.BlocksPerGroup)
	le.PutUint32(sb[ext4fs.SbInodesPerGroup:], l.inodesPerGroup)
	le.PutUint32(sb[ext4fs.SbWtime:], lo32(now))
	le.PutUint16(sb[ext4fs.SbMaxMntCount:], 0xFFFF) // no periodic fsck
	le.PutUint16(sb[ext4fs.SbMagic:], ext4fs.Magic)
	le.PutUint16(sb[ext4fs.SbState:], 1)  // clean
	le.PutUint16(sb[ext4fs.SbErrors:], 1) // continue
	le.PutUint32(sb[ext4fs.SbLastcheck:], lo32(now))
	le.PutUint32(sb[ext4fs.SbRevLevel:], 1) // dynamic
	le.PutUint32(sb[ext4fs.SbFirstIno:], lostFoundIno)
	le.PutUint16(sb[ext4fs.SbInodeSize:], ext4fs.InodeSize)
	le.PutUint16(sb[ext4fs.SbBlockGroupNr:], uint16(g))
	le.PutUint32(sb[ext4fs.SbFeatureCompat:], ext4fs.CompatHasJournal|ext4fs.CompatExtAttr|ext4fs.CompatDirIndex)
	le.PutUint32(sb[ext4fs.SbFeatureIncompat:], ext4fs.IncompatFiletype|ext4fs.IncompatExtents|ext4fs.Incompat64bit|ext4fs.IncompatFlexBG)
	le.PutUint32(sb[ext4fs.SbFeatureRoCompat:], ext4fs.RoCompatSparseSuper|ext4fs.RoCompatLargeFile|ext4fs.RoCompatHugeFile|
		ext4fs.RoCompatDirNlink|ext4fs.RoCompatExtraIsize|ext4fs.RoCompatMetadataCsum)
	copy(sb[ext4fs.SbUUID:], o.UUID[:])
	copy(sb[ext4fs.SbVolumeName:ext4fs.SbVolumeName+16], o.Label)
	le.PutUint32(sb[ext4fs.SbJournalInum:], ext4fs.JournalIno)
	copy(sb[ext4fs.SbHashSeed:], fs.hashSeed[:])
	sb[ext4fs.SbDefHashVersion] = 1 // half_md4
	sb[ext4fs.SbJnlBackupType] = 1  // s_jnl_blocks holds the journal's i_block
	le.PutUint16(sb[ext4fs.SbDescSize:], ext4fs.DescSize)
	le.PutUint32(sb[ext4fs.SbDefaultMountOpts:], 0x4|0x8) // user_xattr, acl
	le.PutUint32(sb[ext4fs.SbMkfsTime:], lo32(now))
	journal := fs.journalInode()
	jnl := sb[ext4fs.SbJnlBlocks:]
	copy(jnl, journal[ext4fs.InoBlock:ext4fs.InoBlock+ext4fs.InoBlockLen])
	le.PutUint32(jnl[ext4fs.InoBlockLen:], le.Uint32(journal[ext4fs.InoSizeHi:]))
	le.PutUint32(jnl[ext4fs.InoBlockLen+4:], le.Uint32(journal[ext4fs.InoSizeLo:]))
	le.PutUint32(sb[ext4fs.SbBlocksCountHi:], uint32(l.blocks>>32))
	le.PutUint32(sb[ext4fs.SbRBlocksCountHi:], uint32(reserved>>32))
	le.PutUint32(sb[ext4fs.SbFreeBlocksHi:], uint32(freeBlocks>>32))
	le.PutUint16(sb[ext4fs.SbMinExtraIsize:], ext4fs.ExtraIsize)
	le.PutUint16(sb[ext4fs.SbWantExtraIsize:], ext4fs.ExtraIsize)
	le.PutUint32(sb[ext4fs.SbFlags:], 1) // signed directory hash, as on x86
	sb[ext4fs.SbLogGroupsPerFlex] = ext4fs.LogGroupsPerFlex
	sb[ext4fs.SbChecksumType] = 1                                      // crc32c
	le.PutUint32(sb[ext4fs.SbOverheadClusters:], uint32(l.overhead())) // or the kernel counts them at mount
	sb[ext4fs.SbWtimeHi] = hi8(now)
	sb[ext4fs.SbMkfsTimeHi] = hi8(now)
	sb[ext4fs.SbLastcheckHi] = hi8(now)
	le.PutUint32(sb[ext4fs.SbChecksum:], csum.Super(sb))
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
	d := make([]byte, ext4fs.DescSize)
	put := func(lo, hi int, v uint64) { // a field split in 32-bit halves
		le.PutUint32(d[lo:], uint32(v))
		le.PutUint32(d[hi:], uint32(v>>32))
	}
	put16 := func(lo, hi int, v uint32) { // a field split in 16-bit halves
		le.PutUint16(d[lo:], uint16(v))
		le.PutUint16(d[hi:], uint16(v>>16))
	}
	put(ext4fs.GdBlockBitmapLo, ext4fs.GdBlockBitmapHi, l.blockBitmap(g))
	put(ext4fs.GdInodeBitmapLo, ext4fs.GdInodeBitmapHi, l.inodeBitmap(g))
	put(ext4fs.GdInodeTableLo, ext4fs.GdInodeTableHi, l.inodeTable(g))
	put16(ext4fs.GdFreeBlocksLo, ext4fs.GdFreeBlocksHi, uint32(gd.freeBlocks))
	put16(ext4fs.GdFreeInodesLo, ext4fs.GdFreeInodesHi, gd.freeInodes)
	put16(ext4fs.GdUsedDirsLo, ext4fs.GdUsedDirsHi, gd.dirs)
	le.PutUint16(d[ext4fs.GdFlags:], gd.flags)
	put16(ext4fs.GdBlockBitmapCsumLo, ext4fs.GdBlockBitmapCsumHi, gd.blockBitmapCsum)
	put16(ext4fs.GdInodeBitmapCsumLo, ext4fs.GdInodeBitmapCsumHi, gd.inodeBitmapCsum)
	put16(ext4fs.GdItableUnusedLo, ext4fs.GdItableUnusedHi, gd.freeInodes)
	le.PutUint16(d[ext4fs.GdChecksum:], csum.GroupDesc(fs.csumSeed(), g, d))
	return d
}

// newInode is an inode with its times set, not yet checksummed.
func (fs *fsImage) newInode(mode uint16, links uint16, size uint64) []byte {
	t := fs.opts.Time
	b := make([]byte, ext4fs.InodeSize)
	le.PutUint16(b[ext4fs.InoMode:], mode)
	le.PutUint32(b[ext4fs.InoSizeLo:], uint32(size))
	le.PutUint32(b[ext4fs.InoSizeHi:], uint32(size>>32))
	le.PutUint16(b[ext4fs.InoLinksCount:], links)
	le.PutUint16(b[ext4fs.InoExtraIsize:], ext4fs.ExtraIsize)
	for _, off := range [][2]int{
		{ext4fs.InoAtime, ext4fs.InoAtimeExtra}, {ext4fs.InoCtime, ext4fs.InoCtimeExtra},
		{ext4fs.InoMtime, ext4fs.InoMtimeExtra}, {ext4fs.InoCrtime, ext4fs.InoCrtimeExtra},
	} {
		le.PutUint32(b[off[0]:], lo32(t.Unix()))
		le.PutUint32(b[off[1]:], extraTime(t))
	}
	return b
}

// setExtent makes b's data one extent of n blocks from start, held in the
// inode itself (an extent tree of depth 0).
func setExtent(b []byte, start uint64, n uint32) {
	le.PutUint32(b[ext4fs.InoBlocksLo:], n*ext4fs.BlockSize/512)
	le.PutUint32(b[ext4fs.InoFlags:], ext4fs.InodeFlagExtents)
	e := b[ext4fs.InoBlock : ext4fs.InoBlock+ext4fs.InoBlockLen]
	le.PutUint16(e[0:], ext4fs.ExtentMagic)
	le.PutUint16(e[2:], 1) // entries
	le.PutUint16(e[4:], 4) // the most that fit in i_block
	le.PutUint16(e[6:], 0) // depth
	le.PutUint32(e[12:], 0)
	le.PutUint16(e[16:], uint16(n))
	le.PutUint16(e[18:], uint16(start>>32))
	le.PutUint32(e[20:], uint32(start))
}

// setInodeChecksum stores inode ino's checksum in it.
func (fs *fsImage) setInodeChecksum(b []byte, ino uint32) {
	csum.SetInode(fs.csumSeed(), ino, b)
}

func (fs *fsImage) rootInode() []byte {
	b := fs.newInode(0o040755, 3, ext4fs.BlockSize) // ., .. and lost+found's ..
	setExtent(b, fs.rootDir, 1)
	fs.setInodeChecksum(b, ext4fs.RootIno)
	return b
}

func (fs *fsImage) lostFoundInode() []byte {
	b := fs.newInode(0o040700, 2, lostFoundBlocks*ext4fs.BlockSize)
	setExtent(b, fs.lostFound, lostFoundBlocks)
	fs.setInodeChecksum(b, lostFoundIno)
	return b
}

func (fs *fsImage) journalInode() []byte {
	b := fs.newInode(0o100600, 1, uint64(fs.journalBlocks)*ext4fs.BlockSize)
	setExtent(b, fs.journal, fs.journalBlocks)
	fs.setInodeChecksum(b, ext4fs.JournalIno)
	return b
}

// inodeTableStart is the first block of group 0's inode table: inodes 1
// to 16. Reserved inodes other than the root and the journal are zero but
// for their checksum, and the bad blocks inode's times, as mke2fs has them.
func (fs *fsImage) inodeTableStart() []byte {
	blk := make([]byte, ext4fs.BlockSize)
	for ino := uint32(1); ino <= lostFoundIno; ino++ {
		var b []byte
		switch ino {
		case ext4fs.RootIno:
			b = fs.rootInode()
		case ext4fs.JournalIno:
			b = fs.journalInode()
		case lostFoundIno:
			b = fs.lostFoundInode()
		default:
			b = make([]byte, ext4fs.InodeSize)
			if ino == 1 {
				for _, off := range []int{ext4fs.InoAtime, ext4fs.InoCtime, ext4fs.InoMtime} {
					le.PutUint32(b[off:], lo32(fs.opts.Time.Unix()))
				}
			}
			fs.setInodeChecksum(b, ino)
		}
		copy(blk[(ino-1)*ext4fs.InodeSize:], b)
	}
	return blk
}

// dirBlock lays out directory entries in one block, the last one taking
// the rest of the block, and ends the block with the checksum entry.
func (fs *fsImage) dirBlock(dirIno uint32, names []string, inos []uint32) []byte {
	const tailLen = ext4fs.DirTailLen
	b := make([]byte, ext4fs.BlockSize)
	off := 0
	for i, name := range names {
		recLen := (8 + len(name) + 3) &^ 3
		if i == len(names)-1 {
			recLen = ext4fs.BlockSize - tailLen - off
		}
		le.PutUint32(b[off:], inos[i])
		le.PutUint16(b[off+4:], uint16(recLen))
		b[off+6] = byte(len(name))
		b[off+7] = ext4fs.FileTypeDir
		copy(b[off+8:], name)
		off += recLen
	}
	if len(names) == 0 { // an empty block: one unused entry
		le.PutUint16(b[4:], ext4fs.BlockSize-tailLen)
	}
	tail := b[ext4fs.BlockSize-tailLen:]
	le.PutUint16(tail[4:], tailLen)
	tail[7] = ext4fs.DirTailFileType
	const generation = 0
	seed := csum.InodeSeed(fs.csumSeed(), dirIno, generation)
	le.PutUint32(tail[8:], csum.CRC32c(seed, b[:ext4fs.BlockSize-tailLen]))
	return b
}

// journalSuperblock is the journal's first block (jbd2, big-endian): an
// empty journal, with nothing to replay (s_start 0).
func (fs *fsImage) journalSuperblock() []byte {
	be := binary.BigEndian
	b := make([]byte, ext4fs.BlockSize)
	be.PutUint32(b[0x00:], ext4fs.JBD2Magic)
	be.PutUint32(b[0x04:], ext4fs.JBD2SuperblockV2)
	be.PutUint32(b[0x0C:], ext4fs.BlockSize)
	be.PutUint32(b[0x10:], fs.journalBlocks) // s_maxlen
	be.PutUint32(b[0x14:], 1)                // s_first: the block after this one
	be.PutUint32(b[0x18:], 1)                // s_sequence
	copy(b[0x30:0x40], fs.opts.UUID[:])
	be.PutUint32(b[0x40:], 1) // s_nr_users
	return b
}
