package ext4w

import (
	"errors"
	"fmt"
	"math"

	"github.com/ginit-dev/ginit/internal/ext4fs"
)

// BlockSize is the file system's block size.
const BlockSize = ext4fs.BlockSize

// ErrNoSpace: the content does not fit in the size asked for.
var ErrNoSpace = errors.New("content does not fit in the file system")

// geometry is the shape of a file system: its groups, and where each
// group's metadata sits. Each flex group of 16 groups has the block and
// inode bitmaps and the inode tables of all its groups at the start of its
// first group, after that group's superblock and descriptor backup, as
// mke2fs lays them out.
type geometry struct {
	blocks         uint64
	groups         uint32
	inodesPerGroup uint32
	itableBlocks   uint32
	gdtBlocks      uint32
}

// minLastGroupData: a last group smaller than its own metadata and this
// many blocks is left out, as mke2fs does.
const minLastGroupData = 50

// newGeometry lays out blocks blocks with room for at least inodes inodes
// (more when the size calls for them: one per InodeRatio bytes).
func newGeometry(blocks uint64, inodes uint64) (geometry, error) {
	if blocks > math.MaxUint32 {
		return geometry{}, fmt.Errorf("%d blocks: larger than the 16 TiB supported", blocks)
	}
	for {
		g := geometry{blocks: blocks}
		g.groups = uint32(ext4fs.Groups(blocks))
		ipg := (max(inodes, blocks*BlockSize/ext4fs.InodeRatio) + uint64(g.groups) - 1) / uint64(g.groups)
		ipg = (ipg + ext4fs.InodesPerBlock - 1) / ext4fs.InodesPerBlock * ext4fs.InodesPerBlock
		if ipg > BlockSize*8 {
			return geometry{}, fmt.Errorf("%d inodes in %d blocks: more than one bitmap block per group maps; %w", inodes, blocks, ErrNoSpace)
		}
		ipg = max(ipg, ext4fs.InodesPerBlock)
		g.inodesPerGroup = uint32(ipg)
		g.itableBlocks = g.inodesPerGroup / ext4fs.InodesPerBlock
		g.gdtBlocks = uint32(ext4fs.DescBlocks(uint64(g.groups)))
		last := g.groups - 1
		if last == 0 || g.groupLen(last) >= g.metaBlocks(last)+minLastGroupData {
			if g.metaBlocks(0)+minLastGroupData > g.groupLen(0) {
				return geometry{}, fmt.Errorf("%d blocks: too small: %w", blocks, ErrNoSpace)
			}
			return g, nil
		}
		blocks = uint64(last) * ext4fs.BlocksPerGroup
	}
}

func (g *geometry) inodes() uint64 { return uint64(g.inodesPerGroup) * uint64(g.groups) }

func (g *geometry) groupStart(n uint32) uint64 { return uint64(n) * ext4fs.BlocksPerGroup }

func (g *geometry) groupLen(n uint32) uint64 {
	return min(ext4fs.BlocksPerGroup, g.blocks-g.groupStart(n))
}

// superBlocks is the superblock and descriptor table blocks in group n.
func (g *geometry) superBlocks(n uint32) uint64 {
	if ext4fs.HasSuper(uint64(n)) {
		return 1 + uint64(g.gdtBlocks)
	}
	return 0
}

// flexLen is the number of groups in the flex group that n leads.
func (g *geometry) flexLen(n uint32) uint64 { return uint64(min(ext4fs.GroupsPerFlex, g.groups-n)) }

// metaBlocks is the metadata at the start of group n.
func (g *geometry) metaBlocks(n uint32) uint64 {
	m := g.superBlocks(n)
	if n%ext4fs.GroupsPerFlex == 0 {
		m += g.flexLen(n) * (2 + uint64(g.itableBlocks))
	}
	return m
}

func (g *geometry) blockBitmap(n uint32) uint64 {
	lead := n - n%ext4fs.GroupsPerFlex
	return g.groupStart(lead) + g.superBlocks(lead) + uint64(n-lead)
}

func (g *geometry) inodeBitmap(n uint32) uint64 {
	lead := n - n%ext4fs.GroupsPerFlex
	return g.groupStart(lead) + g.superBlocks(lead) + g.flexLen(lead) + uint64(n-lead)
}

func (g *geometry) inodeTable(n uint32) uint64 {
	lead := n - n%ext4fs.GroupsPerFlex
	return g.groupStart(lead) + g.superBlocks(lead) + 2*g.flexLen(lead) + uint64(n-lead)*uint64(g.itableBlocks)
}

// overhead is the metadata blocks of the whole file system.
func (g *geometry) overhead() uint64 {
	var n uint64
	for i := range g.groups {
		n += g.metaBlocks(i)
	}
	return n
}

// extent is a run of physical blocks.
type extent struct {
	start, n uint64
}

// allocator hands out the blocks after the metadata, front to back; a
// request that meets a group's metadata continues after it.
type allocator struct {
	g    *geometry
	next uint64
	runs []extent // everything handed out, in order, merged
}

func newAllocator(g *geometry) *allocator {
	return &allocator{g: g, next: g.metaBlocks(0)}
}

// alloc returns n blocks as one or more runs.
func (a *allocator) alloc(n uint64) ([]extent, error) {
	var out []extent
	for n > 0 {
		if a.next >= a.g.blocks {
			return nil, ErrNoSpace
		}
		grp := uint32(a.next / ext4fs.BlocksPerGroup)
		start := a.g.groupStart(grp)
		if meta := a.g.metaBlocks(grp); a.next < start+meta {
			a.next = start + meta
			continue
		}
		end := start + a.g.groupLen(grp)
		take := min(n, end-a.next)
		e := extent{a.next, take}
		if k := len(out); k > 0 && out[k-1].start+out[k-1].n == e.start {
			out[k-1].n += take
		} else {
			out = append(out, e)
		}
		if k := len(a.runs); k > 0 && a.runs[k-1].start+a.runs[k-1].n == e.start {
			a.runs[k-1].n += take
		} else {
			a.runs = append(a.runs, e)
		}
		a.next += take
		n -= take
	}
	return out, nil
}

// used is the data blocks handed out.
func (a *allocator) used() uint64 {
	var n uint64
	for _, r := range a.runs {
		n += r.n
	}
	return n
}
