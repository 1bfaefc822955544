package ext4w

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/ginit-dev/ginit/internal/ext4fs"
)

// BlockSize is the file system's block size.
const BlockSize = ext4fs.BlockSize

// ErrNoSpace: the content does not fit in the file system.
var ErrNoSpace = errors.New("content does not fit in the file system")

// descPerBlock is the groups whose descriptors fill one block: a meta
// group (meta_bg).
const descPerBlock = BlockSize / ext4fs.DescSize

// The blocks at a group's start that are not the allocator's depend on
// the group's number alone, never on the file system's size: superblock
// backups in groups 0, 1 and the powers of 3, 5 and 7 (sparse_super), and
// a meta group's descriptor block in its first, second and last group
// (meta_bg). So file data can go to its final blocks as it streams, before
// the size is known; bitmaps and inode tables go anywhere (flex_bg) and
// are placed after the data, once it is.

// descCopy says whether group g holds a copy of its meta group's
// descriptor block.
func descCopy(g uint64) bool {
	m := g % descPerBlock
	return m == 0 || m == 1 || m == descPerBlock-1
}

// reservedBlocks is the superblock and descriptor blocks at the start of
// group g.
func reservedBlocks(g uint64) uint64 {
	var n uint64
	if ext4fs.HasSuper(g) {
		n++
	}
	if descCopy(g) {
		n++
	}
	return n
}

// geometry is the shape of a file system: its groups, and where each
// group's bitmaps and inode table were placed.
type geometry struct {
	blocks         uint64
	groups         uint32
	inodesPerGroup uint32
	itableBlocks   uint32
	// by group, set by Plan.allocate
	blockBitmap, inodeBitmap, inodeTable []uint64
}

// minLastGroupData: a last group smaller than the metadata mke2fs counts
// for a group (3 blocks and an inode table, wherever flex_bg puts it) and
// this many blocks is left out, as mke2fs leaves it out.
const minLastGroupData = 50

// newGeometry lays out blocks blocks with room for at least inodes inodes
// (more when the size calls for them: one per InodeRatio bytes). A last
// group too small to keep is dropped, or with grow set, filled out.
func newGeometry(blocks, inodes uint64, grow bool) (geometry, error) {
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
		last := g.groups - 1
		keep := 3 + uint64(g.itableBlocks) + minLastGroupData
		switch {
		case g.groupLen(last) >= keep:
			return g, nil
		case grow || last == 0:
			blocks = g.groupStart(last) + keep
		default:
			blocks = g.groupStart(last)
		}
	}
}

func (g *geometry) inodes() uint64 { return uint64(g.inodesPerGroup) * uint64(g.groups) }

func (g *geometry) groupStart(n uint32) uint64 { return uint64(n) * ext4fs.BlocksPerGroup }

func (g *geometry) groupLen(n uint32) uint64 {
	return min(ext4fs.BlocksPerGroup, g.blocks-g.groupStart(n))
}

// reserved is the superblock and descriptor blocks of the whole file
// system.
func (g *geometry) reserved() uint64 {
	var n uint64
	for i := range g.groups {
		n += reservedBlocks(uint64(i))
	}
	return n
}

// overhead is the metadata blocks of the whole file system: superblocks,
// descriptors, bitmaps and inode tables.
func (g *geometry) overhead() uint64 {
	return g.reserved() + uint64(g.groups)*(2+uint64(g.itableBlocks))
}

// descBlock is where group grp's copy of its meta group's descriptors is.
func descBlock(grp uint64) uint64 {
	b := grp * ext4fs.BlocksPerGroup
	if ext4fs.HasSuper(grp) {
		b++
	}
	return b
}

// extent is a run of physical blocks.
type extent struct {
	start, n uint64
}

// space hands out blocks: first those given back (holes), then the tail:
// the blocks after every one handed out so far, the superblock and
// descriptor blocks at group starts skipped. It is used in two phases:
// file data as it streams, then, once the tree is final, the metadata;
// the second phase starts over from a copy of what the first left, for
// each size tried.
type space struct {
	next  uint64     // the tail's first block
	holes [][]extent // free runs below next, by size class (bits.Len64(n)-1)
	free  uint64     // blocks in holes
	limit uint64     // no block at or past it (0: none)
}

func newSpace() *space { return &space{holes: make([][]extent, 64)} }

// clone is a copy of s that s's later use does not change.
func (s *space) clone() *space {
	c := &space{next: s.next, free: s.free, limit: s.limit, holes: make([][]extent, len(s.holes))}
	for i, h := range s.holes {
		c.holes[i] = append([]extent(nil), h...)
	}
	return c
}

// give returns a run of blocks to the space.
func (s *space) give(e extent) {
	if e.n == 0 {
		return
	}
	c := bits.Len64(e.n) - 1
	s.holes[c] = append(s.holes[c], e)
	s.free += e.n
}

// hole takes a hole of at least n blocks, if there is one: the last one
// given back of the smallest size class that surely holds n blocks, or
// else the last of n's own class if it is long enough.
func (s *space) hole(n uint64) (extent, bool) {
	c := bits.Len64(n) - 1
	for k := c + 1; k < len(s.holes); k++ {
		if h := s.holes[k]; len(h) > 0 {
			e := h[len(h)-1]
			s.holes[k] = h[:len(h)-1]
			s.free -= e.n
			return e, true
		}
	}
	if h := s.holes[c]; len(h) > 0 && h[len(h)-1].n >= n {
		e := h[len(h)-1]
		s.holes[c] = h[:len(h)-1]
		s.free -= e.n
		return e, true
	}
	return extent{}, false
}

// tail returns up to n blocks from the tail, in one run that stops at the
// next group's reserved blocks.
func (s *space) tail(n uint64) (extent, error) {
	for {
		g := s.next / ext4fs.BlocksPerGroup
		start := g * ext4fs.BlocksPerGroup
		if r := reservedBlocks(g); s.next < start+r {
			s.next = start + r
			continue
		}
		take := min(n, start+ext4fs.BlocksPerGroup-s.next)
		if s.limit > 0 {
			if s.next >= s.limit {
				return extent{}, ErrNoSpace
			}
			take = min(take, s.limit-s.next)
		}
		e := extent{s.next, take}
		s.next += take
		return e, nil
	}
}

// alloc returns n blocks: one hole long enough for all of them, or runs
// from the tail.
func (s *space) alloc(n uint64) ([]extent, error) {
	if e, ok := s.hole(n); ok {
		s.give(extent{e.start + n, e.n - n})
		return []extent{{e.start, n}}, nil
	}
	var out []extent
	for n > 0 {
		e, err := s.tail(n)
		if err != nil {
			return nil, err
		}
		if k := len(out); k > 0 && out[k-1].start+out[k-1].n == e.start {
			out[k-1].n += e.n
		} else {
			out = append(out, e)
		}
		n -= e.n
	}
	return out, nil
}

// allocRun returns n blocks in one run; the tail's blocks it skips to
// find one become a hole.
func (s *space) allocRun(n uint64) (uint64, error) {
	if e, ok := s.hole(n); ok {
		s.give(extent{e.start + n, e.n - n})
		return e.start, nil
	}
	for {
		e, err := s.tail(n)
		if err != nil {
			return 0, err
		}
		if e.n == n {
			return e.start, nil
		}
		s.give(e)
	}
}

// freeRuns is the holes, sorted and merged.
func (s *space) freeRuns() []extent {
	var all []extent
	for _, h := range s.holes {
		all = append(all, h...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].start < all[j].start })
	out := all[:0]
	for _, e := range all {
		if k := len(out); k > 0 && out[k-1].start+out[k-1].n == e.start {
			out[k-1].n += e.n
			continue
		}
		out = append(out, e)
	}
	return out
}

// used is the blocks handed out and not given back, the reserved ones
// below the tail left out.
func (s *space) used() uint64 {
	var reserved uint64
	for g := uint64(0); g*ext4fs.BlocksPerGroup < s.next; g++ {
		reserved += min(reservedBlocks(g), s.next-g*ext4fs.BlocksPerGroup)
	}
	return s.next - reserved - s.free
}
