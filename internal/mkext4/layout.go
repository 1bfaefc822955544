package mkext4

import (
	"errors"
	"fmt"
	"math"

	"github.com/ginit-dev/ginit/internal/ext4fs"
)

const (
	// maxBlocks keeps block numbers and the inode count within 32 bits.
	maxBlocks = math.MaxUint32

	lostFoundIno = ext4fs.GoodOldFirstIno
	// lost+found gets 16 KiB, as mke2fs gives it, so that e2fsck can
	// reconnect files there without allocating blocks.
	lostFoundBlocks = 4
	// A last group smaller than its own metadata and this many blocks is
	// left out of the file system, as mke2fs does.
	minLastGroupData = 50
)

// layout is where everything goes. Each group's metadata sits at the start
// of a group: the superblock and descriptor backups at the start of their
// group, and the bitmaps and inode tables of a flex group of 16 groups at
// the start of the first group of the flex group, after its backup.
type layout struct {
	blocks         uint64 // blocks in the file system
	groups         uint32
	inodesPerGroup uint32
	itableBlocks   uint32 // inode table blocks per group
	gdtBlocks      uint32 // group descriptor table blocks
	rootDir        uint64 // the root directory's one block
	lostFound      uint64 // first of lost+found's blocks
	journal        uint64 // first journal block
	journalBlocks  uint32
}

var errTooLarge = errors.New("larger than the 16 TiB this package formats; set Options.Size")

func newLayout(blocks uint64) (layout, error) {
	if blocks > maxBlocks {
		return layout{}, errTooLarge
	}
	var l layout
	for {
		l = layout{blocks: blocks}
		l.groups = uint32(ext4fs.Groups(blocks))
		ipg := (blocks*ext4fs.BlockSize/ext4fs.InodeRatio + uint64(l.groups) - 1) / uint64(l.groups)
		ipg = (ipg + ext4fs.InodesPerBlock - 1) / ext4fs.InodesPerBlock * ext4fs.InodesPerBlock // fill the table's blocks
		ipg = min(ipg, math.MaxUint32/uint64(l.groups)/ext4fs.InodesPerBlock*ext4fs.InodesPerBlock)
		l.inodesPerGroup = uint32(ipg)
		l.itableBlocks = l.inodesPerGroup / ext4fs.InodesPerBlock
		l.gdtBlocks = uint32(ext4fs.DescBlocks(uint64(l.groups)))
		last := l.groups - 1
		if last == 0 || l.groupLen(last) >= l.metaBlocks(last)+minLastGroupData {
			break
		}
		blocks = uint64(last) * ext4fs.BlocksPerGroup
	}
	l.rootDir = l.groupStart(0) + l.metaBlocks(0)
	l.lostFound = l.rootDir + 1
	l.journalBlocks = journalBlocks(l.blocks)
	start, ok := l.firstFit(l.lostFound+lostFoundBlocks, l.journalBlocks)
	if !ok {
		return layout{}, fmt.Errorf("%w: no room for a %d-block journal", ErrTooSmall, l.journalBlocks)
	}
	l.journal = start
	return l, nil
}

// journalBlocks is mke2fs's default journal size, capped at what the one
// extent in the journal inode maps (128 MiB): mke2fs's larger journals,
// from 32 GiB on, would need an extent tree.
func journalBlocks(blocks uint64) uint32 {
	return min(ext4fs.JournalBlocks(blocks), ext4fs.MaxExtentLen)
}

func (l *layout) groupStart(g uint32) uint64 { return uint64(g) * ext4fs.BlocksPerGroup }

func (l *layout) groupLen(g uint32) uint64 {
	return min(ext4fs.BlocksPerGroup, l.blocks-l.groupStart(g))
}

// superBlocks is the superblock and descriptor table blocks in group g.
func (l *layout) superBlocks(g uint32) uint64 {
	if ext4fs.HasSuper(uint64(g)) {
		return 1 + uint64(l.gdtBlocks)
	}
	return 0
}

// flexLen is the number of groups in the flex group that g leads.
func (l *layout) flexLen(g uint32) uint64 {
	return uint64(min(ext4fs.GroupsPerFlex, l.groups-g))
}

// metaBlocks is the metadata at the start of group g: its backups and, in
// the first group of a flex group, the flex group's bitmaps and tables.
func (l *layout) metaBlocks(g uint32) uint64 {
	n := l.superBlocks(g)
	if g%ext4fs.GroupsPerFlex == 0 {
		n += l.flexLen(g) * (2 + uint64(l.itableBlocks))
	}
	return n
}

// blockBitmap, inodeBitmap and inodeTable place group g's metadata in the
// first group of its flex group: all block bitmaps, then all inode
// bitmaps, then all inode tables, as mke2fs does.
func (l *layout) blockBitmap(g uint32) uint64 {
	lead := g - g%ext4fs.GroupsPerFlex
	return l.groupStart(lead) + l.superBlocks(lead) + uint64(g-lead)
}

func (l *layout) inodeBitmap(g uint32) uint64 {
	lead := g - g%ext4fs.GroupsPerFlex
	return l.groupStart(lead) + l.superBlocks(lead) + l.flexLen(lead) + uint64(g-lead)
}

func (l *layout) inodeTable(g uint32) uint64 {
	lead := g - g%ext4fs.GroupsPerFlex
	return l.groupStart(lead) + l.superBlocks(lead) + 2*l.flexLen(lead) + uint64(g-lead)*uint64(l.itableBlocks)
}

// firstFit finds the first n free contiguous blocks at or after from,
// given that only metadata is in use there.
func (l *layout) firstFit(from uint64, n uint32) (uint64, bool) {
	start := from
	for g := uint32(from / ext4fs.BlocksPerGroup); g < l.groups; g++ {
		if meta := l.metaBlocks(g); meta > 0 {
			start = max(start, l.groupStart(g)+meta)
		}
		if end := l.groupStart(g) + l.groupLen(g); end >= start+uint64(n) {
			return start, true
		}
	}
	return 0, false
}

// usedBlocks counts the blocks of group g in use: its metadata, the root
// and lost+found directories, and the journal.
func (l *layout) usedBlocks(g uint32) uint64 {
	return l.metaBlocks(g) +
		overlap(l.groupStart(g), l.groupLen(g), l.rootDir, 1+lostFoundBlocks) +
		overlap(l.groupStart(g), l.groupLen(g), l.journal, uint64(l.journalBlocks))
}

// overlap is the number of blocks two ranges share.
func overlap(start1, len1, start2, len2 uint64) uint64 {
	lo, hi := max(start1, start2), min(start1+len1, start2+len2)
	if hi <= lo {
		return 0
	}
	return hi - lo
}

// blockUninit says whether the kernel can compute group g's block bitmap
// itself (EXT4_BG_BLOCK_UNINIT): only a group that holds nothing but its
// own backups. mke2fs also never marks the last group so.
func (l *layout) blockUninit(g uint32) bool {
	return g != 0 && g%ext4fs.GroupsPerFlex != 0 && g != l.groups-1 && l.usedBlocks(g) == l.superBlocks(g)
}

// overhead is the blocks that are never free: metadata and the journal.
func (l *layout) overhead() uint64 {
	n := uint64(l.journalBlocks)
	for g := range l.groups {
		n += l.metaBlocks(g)
	}
	return n
}
