package mkext4

import (
	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/csum"
)

// wipeBytes is zeroed at both ends of the file system: partition tables,
// other file systems' superblocks (btrfs's sits at 64 KiB), RAID and LVM
// labels live there, and would otherwise still be found by probes.
const wipeBytes = 1 << 20

// write puts the file system on dev: data first and the primary
// superblock last, so that a failure half way leaves no valid ext4.
func (fs *fsImage) write(dev *device) error {
	l := &fs.layout
	end := int64(l.blocks) * ext4fs.BlockSize
	if err := dev.zero(0, wipeBytes); err != nil {
		return err
	}
	if err := dev.zero(end-wipeBytes, wipeBytes); err != nil {
		return err
	}
	if err := dev.zero(int64(l.journal)*ext4fs.BlockSize, int64(l.journalBlocks)*ext4fs.BlockSize); err != nil {
		return err
	}
	type block struct {
		at   uint64
		data []byte
	}
	blocks := []block{
		{l.journal, fs.journalSuperblock()},
		{l.inodeTable(0), fs.inodeTableStart()},
		{l.rootDir, fs.dirBlock(ext4fs.RootIno, []string{".", "..", "lost+found"}, []uint32{ext4fs.RootIno, ext4fs.RootIno, lostFoundIno})},
		{l.lostFound, fs.dirBlock(lostFoundIno, []string{".", ".."}, []uint32{lostFoundIno, ext4fs.RootIno})},
	}
	for i := uint64(1); i < lostFoundBlocks; i++ {
		blocks = append(blocks, block{l.lostFound + i, fs.dirBlock(lostFoundIno, nil, nil)})
	}
	for _, b := range blocks {
		if err := dev.writeBlock(b.at, b.data); err != nil {
			return err
		}
	}

	gdt := make([]byte, uint64(l.gdtBlocks)*ext4fs.BlockSize)
	var freeBlocks uint64
	var freeInodes uint32
	for g := range l.groups {
		gd := groupDesc{
			flags:      ext4fs.BgInodeUninit,
			freeBlocks: l.groupLen(g) - l.usedBlocks(g),
			freeInodes: l.inodesPerGroup,
		}
		if g == 0 { // inodes 1 to 11 are in use: the root and lost+found are directories
			gd.flags, gd.freeInodes, gd.dirs = 0, l.inodesPerGroup-lostFoundIno, 2
			bitmap := fs.inodeBitmap()
			if err := dev.writeBlock(l.inodeBitmap(0), bitmap); err != nil {
				return err
			}
			gd.inodeBitmapCsum = csum.CRC32c(fs.csumSeed(), bitmap[:l.inodesPerGroup/8])
		}
		if l.blockUninit(g) {
			gd.flags |= ext4fs.BgBlockUninit
		} else {
			bitmap := fs.blockBitmap(g)
			if err := dev.writeBlock(l.blockBitmap(g), bitmap); err != nil {
				return err
			}
			gd.blockBitmapCsum = csum.CRC32c(fs.csumSeed(), bitmap)
		}
		copy(gdt[g*ext4fs.DescSize:], fs.encodeDesc(g, gd))
		freeBlocks += gd.freeBlocks
		freeInodes += gd.freeInodes
	}

	for g := int64(l.groups) - 1; g >= 0; g-- {
		if !ext4fs.HasSuper(uint64(g)) {
			continue
		}
		start := l.groupStart(uint32(g))
		if err := dev.writeBlock(start+1, gdt); err != nil {
			return err
		}
		block := make([]byte, ext4fs.BlockSize)
		off := 0
		if g == 0 {
			off = ext4fs.SuperOffset // the primary superblock leaves room for a boot sector
		}
		copy(block[off:], fs.superblock(uint32(g), freeBlocks, freeInodes))
		if err := dev.writeBlock(start, block); err != nil {
			return err
		}
	}
	return nil
}

// blockBitmap is group g's block bitmap, with the bits past a short last
// group set, as the kernel and e2fsck expect.
func (fs *fsImage) blockBitmap(g uint32) []byte {
	l := &fs.layout
	b := make([]byte, ext4fs.BlockSize)
	start, n := l.groupStart(g), l.groupLen(g)
	setBits(b, 0, l.metaBlocks(g))
	for _, r := range [][2]uint64{{l.rootDir, 1 + lostFoundBlocks}, {l.journal, uint64(l.journalBlocks)}} {
		if o := overlap(start, n, r[0], r[1]); o > 0 {
			setBits(b, max(start, r[0])-start, o)
		}
	}
	setBits(b, n, ext4fs.BlocksPerGroup-n)
	return b
}

// inodeBitmap is group 0's inode bitmap: the reserved inodes and
// lost+found in use, and the bits past the group's inodes set.
func (fs *fsImage) inodeBitmap() []byte {
	b := make([]byte, ext4fs.BlockSize)
	setBits(b, 0, lostFoundIno)
	setBits(b, uint64(fs.inodesPerGroup), ext4fs.BlockSize*8-uint64(fs.inodesPerGroup))
	return b
}

func setBits(b []byte, from, n uint64) {
	for i := from; i < from+n; i++ {
		b[i/8] |= 1 << (i % 8)
	}
}
