package ext4w

import (
	"errors"
	"fmt"
	"math/bits"
	"os"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/csum"
)

// IDs are the identities of a file system.
type IDs struct {
	UUID [16]byte
}

// Write writes the file system's metadata into the image its file data
// went to, and sizes the image: only blocks that hold something are
// written, blocks of file data that no file kept are punched out.
func (pl *Plan) Write(ids IDs) error {
	im := pl.tree.File
	if im == nil {
		return errors.New("writing a file system: the tree has no image file")
	}
	f := im.f
	if err := f.Truncate(pl.Size()); err != nil {
		return fmt.Errorf("sizing %s: %w", f.Name(), err)
	}
	// Blocks that deleted files gave back and no later file took hold
	// old data: zeroed, before metadata that counts on zeros (the
	// journal, unused inodes) may go there.
	for _, e := range pl.data.freeRuns() {
		if err := zeroRange(f, int64(e.start)*BlockSize, int64(e.n)*BlockSize); err != nil {
			return fmt.Errorf("zeroing free blocks of %s: %w", f.Name(), err)
		}
	}
	// The metadata goes the way the data went: around the page cache
	// where it can, so the sync has little left to write.
	return pl.write(im.w.f, ids, nil)
}

// wipeBytes is zeroed at both ends of a device: partition tables, other
// file systems' superblocks (btrfs's sits at 64 KiB), RAID and LVM labels
// live there, and would otherwise still be found by probes.
const wipeBytes = 1 << 20

// WriteDevice writes the file system of a tree without files over
// whatever f (a block device, or a file of old data) holds: zero, which
// makes a range read as zeros, is used for both ends of the file system
// and for the journal; inode tables are left for the kernel to zero after
// the first mount (lazy init), so only the metadata in use is written. The
// primary superblock goes last.
func (pl *Plan) WriteDevice(f *os.File, ids IDs, zero func(off, n int64) error) error {
	if pl.data.next > 0 {
		return errors.New("writing a file system over a device: the tree has files")
	}
	end := pl.Size()
	if err := zero(0, wipeBytes); err != nil {
		return err
	}
	if err := zero(end-wipeBytes, wipeBytes); err != nil {
		return err
	}
	for _, e := range pl.journal.ext {
		if err := zero(int64(e.pblk)*BlockSize, int64(e.n)*BlockSize); err != nil {
			return err
		}
	}
	return pl.write(f, ids, zero)
}

// write writes the metadata; zero is set for a device that may hold old
// data.
func (pl *Plan) write(f *os.File, ids IDs, zero func(off, n int64) error) error {
	pl.device = zero != nil
	w := &blockWriter{f: f, buf: alignedBuf(4 << 20)}
	seed := csum.Seed(ids.UUID)

	// The journal's superblock and the journal inode.
	jb := uint32(pl.JournalBlocks())
	if err := w.put(pl.journal.ext[0].pblk, journalSuperblock(jb, ids.UUID)); err != nil {
		return err
	}
	jino := make([]byte, ext4fs.InodeSize)
	pl.initInode(jino, 0o100600, 1, pl.p.Time, pl.p.Time)
	putSize(jino, uint64(jb)*BlockSize)
	if err := pl.mapInode(w, jino, &pl.journal, ext4fs.JournalIno, seed, uint64(jb)); err != nil {
		return err
	}
	if err := pl.writeTree(w, jino, &pl.journal, ext4fs.JournalIno, seed); err != nil {
		return err
	}
	csum.SetInode(seed, ext4fs.JournalIno, jino)
	return pl.writeGroups(w, jino, ids, seed)
}

// encodeInodeAt builds inode ino into b, checksummed, and writes its
// directory, symlink, attribute and extent tree blocks.
func (pl *Plan) encodeInodeAt(w *blockWriter, b []byte, ino uint32, seed uint32) error {
	n := pl.nodes[ino]
	if n == nil {
		pl.reservedInode(b, ino, seed)
		return nil
	}
	if err := pl.encodeInode(w, b, ino, n, seed); err != nil {
		return err
	}
	if err := pl.writeTree(w, b, &pl.info[ino], ino, seed); err != nil {
		return err
	}
	csum.SetInode(seed, ino, b)
	return nil
}

// initInode makes b an inode with its mode, links and times set.
func (pl *Plan) initInode(b []byte, mode uint32, links uint32, mtime, crtime int64) {
	clear(b)
	le.PutUint16(b[ext4fs.InoMode:], uint16(mode))
	le.PutUint16(b[ext4fs.InoLinksCount:], uint16(links))
	le.PutUint16(b[ext4fs.InoExtraIsize:], ext4fs.ExtraIsize)
	putTimes(b, mtime, crtime)
}

// mapInode gives an inode with extents its extent root, flags and block
// count (data blocks, tree blocks and the attribute block).
func (pl *Plan) mapInode(w *blockWriter, b []byte, in *inodeInfo, ino uint32, seed uint32, dataBlocks uint64) error {
	le.PutUint32(b[ext4fs.InoFlags:], ext4fs.InodeFlagExtents)
	blocks := dataBlocks + uint64(in.trees())
	if in.xblock != 0 {
		blocks++
	}
	putBlocks(b, blocks)
	if in.treeAt == 0 {
		extentTree(b[ext4fs.InoBlock:ext4fs.InoBlock+ext4fs.InoBlockLen], in.ext, nil, 0)
	}
	return nil
}

// writeTree writes the extent tree blocks of an inode and its root.
func (pl *Plan) writeTree(w *blockWriter, b []byte, in *inodeInfo, ino uint32, seed uint32) error {
	if in.treeAt == 0 {
		return nil
	}
	at := make([]uint64, in.trees())
	for i := range at {
		at[i] = in.treeAt + uint64(i)
	}
	blocks := extentTree(b[ext4fs.InoBlock:ext4fs.InoBlock+ext4fs.InoBlockLen], in.ext, at, csum.InodeSeed(seed, ino, 0))
	for i, blk := range blocks {
		if err := w.put(at[i], blk); err != nil {
			return err
		}
	}
	return w.flush()
}

// encodeInode builds inode ino and writes its directory, symlink and
// attribute blocks.
func (pl *Plan) encodeInode(w *blockWriter, b []byte, ino uint32, n *Node, seed uint32) error {
	t := pl.p.Time
	m := n.Mtime
	if n.fixed || pl.p.Clamp && m > t {
		m = t
	}
	pl.initInode(b, n.Mode, n.links, m, t)
	le.PutUint16(b[ext4fs.InoUIDLo:], uint16(n.UID))
	le.PutUint16(b[ext4fs.InoUIDHi:], uint16(n.UID>>16))
	le.PutUint16(b[ext4fs.InoGIDLo:], uint16(n.GID))
	le.PutUint16(b[ext4fs.InoGIDHi:], uint16(n.GID>>16))
	in := &pl.info[ino]
	var xblk []xentry
	if len(n.Xattrs) > 0 {
		// Measured before: the split cannot fail here.
		es, _ := encodeXattrs(n.Xattrs)
		var inline []xentry
		inline, xblk, _ = splitXattrs(es, ext4fs.InodeSize)
		putInlineXattrs(b, inline)
	}
	if in.xblock != 0 {
		le.PutUint32(b[inoFileACLLo:], uint32(in.xblock))
		le.PutUint16(b[inoFileACLHi:], uint16(in.xblock>>32))
		if err := w.put(in.xblock, xattrBlock(xblk, seed, in.xblock)); err != nil {
			return err
		}
		putBlocks(b, 1)
	}
	iblock := b[ext4fs.InoBlock : ext4fs.InoBlock+ext4fs.InoBlockLen]
	switch n.Type() {
	case TypeDir:
		putSize(b, uint64(in.dirBlocks)*BlockSize)
		parent := pl.parentOf(n)
		var blocks [][]byte
		if in.dx != nil {
			blocks = pl.dxBlocks(n, parent, in.dx, csum.InodeSeed(seed, ino, 0))
		} else {
			blocks = pl.dirBlocks(n, parent, int(in.dirBlocks), seed)
		}
		if err := pl.putData(w, in, blocks); err != nil {
			return err
		}
		if err := pl.mapInode(w, b, in, ino, seed, uint64(in.dirBlocks)); err != nil {
			return err
		}
		if in.dx != nil {
			le.PutUint32(b[ext4fs.InoFlags:], ext4fs.InodeFlagExtents|inodeFlagIndex)
		}
	case TypeReg:
		putSize(b, uint64(n.Data.Size))
		if err := pl.mapInode(w, b, in, ino, seed, uint64(n.Data.Blocks())); err != nil {
			return err
		}
	case TypeSymlink:
		putSize(b, uint64(len(n.Target)))
		if len(n.Target) < ext4fs.InoBlockLen {
			copy(iblock, n.Target)
			break
		}
		blk := make([]byte, BlockSize)
		copy(blk, n.Target)
		if err := pl.putData(w, in, [][]byte{blk}); err != nil {
			return err
		}
		if err := pl.mapInode(w, b, in, ino, seed, 1); err != nil {
			return err
		}
	case TypeChar, TypeBlock:
		if n.Major < 256 && n.Minor < 256 {
			le.PutUint32(iblock, n.Major<<8|n.Minor)
		} else {
			le.PutUint32(iblock[4:], newDevEncoding(n.Major, n.Minor))
		}
	}
	return nil
}

// putData writes blocks as the first blocks of an inode's extents.
func (pl *Plan) putData(w *blockWriter, in *inodeInfo, blocks [][]byte) error {
	i := 0
	for _, e := range in.ext {
		for k := uint32(0); k < e.n && i < len(blocks); k++ {
			if err := w.put(e.pblk+uint64(k), blocks[i]); err != nil {
				return err
			}
			i++
		}
	}
	return nil
}

// parentOf finds a directory's parent: the root is its own. Directories
// have one name, so the walk in number order meets the parent first.
func (pl *Plan) parentOf(d *Node) uint32 {
	if pl.parents == nil {
		pl.parents = make(map[*Node]uint32)
		for _, n := range pl.nodes {
			if n == nil || !n.IsDir() {
				continue
			}
			for _, c := range n.children {
				if c.IsDir() {
					pl.parents[c] = n.ino
				}
			}
		}
	}
	if p, ok := pl.parents[d]; ok {
		return p
	}
	return ext4fs.RootIno
}

// writeGroups writes the inode tables, bitmaps, descriptors and
// superblocks.
func (pl *Plan) writeGroups(w *blockWriter, journal []byte, ids IDs, seed uint32) error {
	g := &pl.geo
	ipg := uint64(g.inodesPerGroup)
	used := uint64(len(pl.nodes) - 1) // inodes 1 to used are in use
	descs := make([]byte, roundUp(uint64(g.groups), descPerBlock)*ext4fs.DescSize)
	holes := pl.alloc.freeRuns()
	hi := 0
	var freeBlocks, freeInodes uint64
	bitmap := make([]byte, BlockSize)
	// One group's table at a time: each inode is encoded straight into
	// it, none kept for the whole file system.
	table := alignedBuf(int(g.itableBlocks) * BlockSize)
	for grp := range g.groups {
		start, glen := g.groupStart(grp), g.groupLen(grp)
		// In use: the reserved blocks, every block below the tail but
		// the holes, and the blocks past the file system's end.
		clear(bitmap)
		setBits(bitmap, 0, reservedBlocks(uint64(grp)))
		if next := pl.alloc.next; next > start {
			setBits(bitmap, 0, min(next, start+glen)-start)
		}
		for hi < len(holes) && holes[hi].start+holes[hi].n <= start {
			hi++
		}
		for k := hi; k < len(holes) && holes[k].start < start+glen; k++ {
			lo, end := max(holes[k].start, start), min(holes[k].start+holes[k].n, start+glen)
			clearBits(bitmap, lo-start, end-lo)
		}
		setBits(bitmap, glen, ext4fs.BlocksPerGroup-glen)
		gd := groupDesc{freeBlocks: ext4fs.BlocksPerGroup - popcount(bitmap)}
		if err := w.put(g.blockBitmap[grp], bitmap); err != nil {
			return err
		}
		gd.blockBitmapCsum = csum.CRC32c(seed, bitmap)

		first := uint64(grp)*ipg + 1
		inUse := uint64(0)
		if used >= first {
			inUse = min(used-first+1, ipg)
		}
		gd.freeInodes = uint32(ipg - inUse)
		zeroed := uint16(bgInodeZeroed)
		if pl.device {
			zeroed = 0 // old data there: the kernel zeroes the table
		}
		gd.flags = ext4fs.BgInodeUninit | zeroed
		if inUse > 0 {
			gd.flags = zeroed
			ib := make([]byte, BlockSize)
			setBits(ib, 0, inUse)
			setBits(ib, ipg, BlockSize*8-ipg)
			if err := w.put(g.inodeBitmap[grp], ib); err != nil {
				return err
			}
			gd.inodeBitmapCsum = csum.CRC32c(seed, ib[:ipg/8])
			tb := table[:roundUp(inUse*ext4fs.InodeSize, BlockSize)]
			clear(tb)
			for i := uint64(0); i < inUse; i++ {
				ino := first + i
				b := tb[i*ext4fs.InodeSize : (i+1)*ext4fs.InodeSize]
				if ino == ext4fs.JournalIno {
					copy(b, journal)
					continue
				}
				if err := pl.encodeInodeAt(w, b, uint32(ino), seed); err != nil {
					return err
				}
				if pl.nodes[ino] != nil && pl.nodes[ino].IsDir() {
					gd.dirs++
				}
			}
			for i := uint64(0); i < uint64(len(tb))/BlockSize; i++ {
				if err := w.put(g.inodeTable[grp]+i, tb[i*BlockSize:(i+1)*BlockSize]); err != nil {
					return err
				}
			}
		}
		copy(descs[uint64(grp)*ext4fs.DescSize:], pl.encodeDesc(grp, gd, seed))
		freeBlocks += gd.freeBlocks
		freeInodes += uint64(gd.freeInodes)
	}
	// Each meta group's descriptors in its first, second and last group.
	for grp := uint64(0); grp < uint64(g.groups); grp++ {
		if descCopy(grp) {
			m := grp / descPerBlock * descPerBlock * ext4fs.DescSize
			if err := w.put(descBlock(grp), descs[m:m+BlockSize]); err != nil {
				return err
			}
		}
	}
	// Backups first, the primary superblock last: a failure half way
	// leaves no valid ext4.
	for i := int64(g.groups) - 1; i >= 0; i-- {
		grp := uint32(i)
		if !ext4fs.HasSuper(uint64(grp)) {
			continue
		}
		block := make([]byte, BlockSize)
		off := 0
		if grp == 0 {
			off = ext4fs.SuperOffset // the primary leaves room for a boot sector
		}
		copy(block[off:], pl.superblock(grp, freeBlocks, uint32(freeInodes), ids, journal))
		if err := w.put(g.groupStart(grp), block); err != nil {
			return err
		}
		if err := w.flush(); err != nil {
			return err
		}
	}
	return w.flush()
}

// bgInodeZeroed (EXT4_BG_INODE_ZEROED): the inode table reads as zeros,
// so the kernel need not zero it after mounting. A new image file is all
// holes.
const bgInodeZeroed = 0x4

// reservedInode is a reserved inode other than the root and the journal:
// zero but for its checksum, and the bad blocks inode's times, as mke2fs
// has them.
func (pl *Plan) reservedInode(b []byte, ino uint32, seed uint32) {
	clear(b)
	if ino == 1 {
		for _, off := range []int{ext4fs.InoAtime, ext4fs.InoCtime, ext4fs.InoMtime} {
			le.PutUint32(b[off:], uint32(pl.p.Time))
		}
	}
	csum.SetInode(seed, ino, b)
}

func popcount(b []byte) uint64 {
	var n int
	for i := 0; i < len(b); i += 8 {
		n += bits.OnesCount64(le.Uint64(b[i:]))
	}
	return uint64(n)
}

func clearBits(b []byte, from, n uint64) {
	for i := from; i < from+n; i++ {
		b[i/8] &^= 1 << (i % 8)
	}
}

func setBits(b []byte, from, n uint64) {
	for i := from; i < from+n; {
		if i%8 == 0 && from+n-i >= 8 {
			b[i/8] = 0xff
			i += 8
			continue
		}
		b[i/8] |= 1 << (i % 8)
		i++
	}
}

// groupDesc is what a group descriptor says about its group.
type groupDesc struct {
	flags           uint16
	freeBlocks      uint64
	freeInodes      uint32
	dirs            uint32
	blockBitmapCsum uint32
	inodeBitmapCsum uint32
}

func (pl *Plan) encodeDesc(grp uint32, gd groupDesc, seed uint32) []byte {
	g := &pl.geo
	d := make([]byte, ext4fs.DescSize)
	put := func(lo, hi int, v uint64) {
		le.PutUint32(d[lo:], uint32(v))
		le.PutUint32(d[hi:], uint32(v>>32))
	}
	put16 := func(lo, hi int, v uint32) {
		le.PutUint16(d[lo:], uint16(v))
		le.PutUint16(d[hi:], uint16(v>>16))
	}
	put(ext4fs.GdBlockBitmapLo, ext4fs.GdBlockBitmapHi, g.blockBitmap[grp])
	put(ext4fs.GdInodeBitmapLo, ext4fs.GdInodeBitmapHi, g.inodeBitmap[grp])
	put(ext4fs.GdInodeTableLo, ext4fs.GdInodeTableHi, g.inodeTable[grp])
	put16(ext4fs.GdFreeBlocksLo, ext4fs.GdFreeBlocksHi, uint32(gd.freeBlocks))
	put16(ext4fs.GdFreeInodesLo, ext4fs.GdFreeInodesHi, gd.freeInodes)
	put16(ext4fs.GdUsedDirsLo, ext4fs.GdUsedDirsHi, gd.dirs)
	le.PutUint16(d[ext4fs.GdFlags:], gd.flags)
	put16(ext4fs.GdBlockBitmapCsumLo, ext4fs.GdBlockBitmapCsumHi, gd.blockBitmapCsum)
	put16(ext4fs.GdInodeBitmapCsumLo, ext4fs.GdInodeBitmapCsumHi, gd.inodeBitmapCsum)
	put16(ext4fs.GdItableUnusedLo, ext4fs.GdItableUnusedHi, gd.freeInodes)
	le.PutUint16(d[ext4fs.GdChecksum:], csum.GroupDesc(seed, grp, d))
	return d
}

// superblock is the 1024-byte superblock as it is in group grp.
func (pl *Plan) superblock(grp uint32, freeBlocks uint64, freeInodes uint32, ids IDs, journal []byte) []byte {
	g := &pl.geo
	t := pl.p.Time
	sb := make([]byte, ext4fs.SuperSize)
	le.PutUint32(sb[ext4fs.SbInodesCount:], uint32(g.inodes()))
	le.PutUint32(sb[ext4fs.SbBlocksCountLo:], uint32(g.blocks))
	reserved := g.blocks * uint64(pl.p.ReservePercent) / 100
	le.PutUint32(sb[ext4fs.SbRBlocksCountLo:], uint32(reserved))
	le.PutUint32(sb[ext4fs.SbRBlocksCountHi:], uint32(reserved>>32))
	le.PutUint32(sb[ext4fs.SbFreeBlocksLo:], uint32(freeBlocks))
	le.PutUint32(sb[ext4fs.SbFreeInodes:], freeInodes)
	le.PutUint32(sb[ext4fs.SbLogBlockSize:], 2)
	le.PutUint32(sb[ext4fs.SbLogClusterSize:], 2)
	le.PutUint32(sb[ext4fs.SbBlocksPerGroup:], ext4fs.BlocksPerGroup)
	le.PutUint32(sb[ext4fs.SbClustersPerGroup:], ext4fs.BlocksPerGroup)
	le.PutUint32(sb[ext4fs.SbInodesPerGroup:], g.inodesPerGroup)
	le.PutUint32(sb[ext4fs.SbWtime:], uint32(t))
	le.PutUint16(sb[ext4fs.SbMaxMntCount:], 0xFFFF)
	le.PutUint16(sb[ext4fs.SbMagic:], ext4fs.Magic)
	le.PutUint16(sb[ext4fs.SbState:], 1)
	le.PutUint16(sb[ext4fs.SbErrors:], 1)
	le.PutUint32(sb[ext4fs.SbLastcheck:], uint32(t))
	le.PutUint32(sb[ext4fs.SbRevLevel:], 1)
	le.PutUint32(sb[ext4fs.SbFirstIno:], lostFoundIno)
	le.PutUint16(sb[ext4fs.SbInodeSize:], ext4fs.InodeSize)
	le.PutUint16(sb[ext4fs.SbBlockGroupNr:], uint16(grp))
	le.PutUint32(sb[ext4fs.SbFeatureCompat:], ext4fs.CompatHasJournal|ext4fs.CompatExtAttr|ext4fs.CompatDirIndex)
	le.PutUint32(sb[ext4fs.SbFeatureIncompat:], ext4fs.IncompatFiletype|ext4fs.IncompatMetaBG|ext4fs.IncompatExtents|ext4fs.Incompat64bit|ext4fs.IncompatFlexBG)
	le.PutUint32(sb[ext4fs.SbFeatureRoCompat:], ext4fs.RoCompatSparseSuper|ext4fs.RoCompatLargeFile|ext4fs.RoCompatHugeFile|
		ext4fs.RoCompatDirNlink|ext4fs.RoCompatExtraIsize|ext4fs.RoCompatMetadataCsum)
	copy(sb[ext4fs.SbUUID:], ids.UUID[:])
	copy(sb[ext4fs.SbVolumeName:ext4fs.SbVolumeName+16], pl.p.Label)
	le.PutUint32(sb[ext4fs.SbJournalInum:], ext4fs.JournalIno)
	copy(sb[ext4fs.SbHashSeed:], pl.p.HashSeed[:])
	sb[ext4fs.SbDefHashVersion] = 1 // half_md4
	sb[ext4fs.SbJnlBackupType] = 1  // s_jnl_blocks holds the journal's i_block
	le.PutUint16(sb[ext4fs.SbDescSize:], ext4fs.DescSize)
	le.PutUint32(sb[ext4fs.SbDefaultMountOpts:], 0x4|0x8) // user_xattr, acl
	le.PutUint32(sb[ext4fs.SbMkfsTime:], uint32(t))
	jnl := sb[ext4fs.SbJnlBlocks:]
	copy(jnl, journal[ext4fs.InoBlock:ext4fs.InoBlock+ext4fs.InoBlockLen])
	le.PutUint32(jnl[ext4fs.InoBlockLen:], le.Uint32(journal[ext4fs.InoSizeHi:]))
	le.PutUint32(jnl[ext4fs.InoBlockLen+4:], le.Uint32(journal[ext4fs.InoSizeLo:]))
	le.PutUint32(sb[ext4fs.SbBlocksCountHi:], uint32(g.blocks>>32))
	le.PutUint32(sb[ext4fs.SbFreeBlocksHi:], uint32(freeBlocks>>32))
	le.PutUint16(sb[ext4fs.SbMinExtraIsize:], ext4fs.ExtraIsize)
	le.PutUint16(sb[ext4fs.SbWantExtraIsize:], ext4fs.ExtraIsize)
	le.PutUint32(sb[ext4fs.SbFlags:], 1) // signed directory hash, as on x86
	sb[ext4fs.SbLogGroupsPerFlex] = ext4fs.LogGroupsPerFlex
	sb[ext4fs.SbChecksumType] = 1
	le.PutUint32(sb[ext4fs.SbOverheadClusters:], uint32(g.overhead()+uint64(pl.JournalBlocks())))
	sb[ext4fs.SbWtimeHi] = byte(t >> 32)
	sb[ext4fs.SbMkfsTimeHi] = byte(t >> 32)
	sb[ext4fs.SbLastcheckHi] = byte(t >> 32)
	le.PutUint32(sb[ext4fs.SbChecksum:], csum.Super(sb))
	return sb
}
