package ext4w

import (
	"errors"
	"fmt"

	"github.com/ginit-dev/ginit/internal/ext4fs"
)

// Params say what file system to make of a tree.
type Params struct {
	Size  int64 // total bytes; 0: the content plus Free
	Free  int64 // free bytes to leave in an automatically sized file system
	Label string
	// Time stamps the file system, the nodes made here (the root, a
	// lost+found the tree lacks) and every crtime.
	Time  int64
	Clamp bool // mtimes later than Time become Time
	// HashSeed seeds the directory index hash (s_hash_seed).
	HashSeed [16]byte
	// ReservePercent of the blocks are kept for root (mke2fs's -m).
	ReservePercent int
}

// MinSize is the smallest file system made: room for the metadata, the
// smallest journal the kernel accepts (4 MiB) and some data.
const MinSize = 8 << 20

const (
	lostFoundIno = ext4fs.GoodOldFirstIno
	// lost+found gets 16 KiB, as mke2fs gives it, so that e2fsck can
	// reconnect files there without allocating blocks.
	lostFoundBlocks = 4
	maxLinks        = 65000 // EXT4_LINK_MAX
	maxFileBlocks   = 1 << 32
)

// Plan is a tree laid out as a file system: every inode numbered and every
// block placed, ready to be written.
type Plan struct {
	tree  *Tree
	p     Params
	geo   geometry
	nodes []*Node     // by inode number; nil for the reserved ones
	info  []inodeInfo // by inode number
	data  *space      // the blocks the file data took
	alloc *space      // data and metadata

	journal inodeInfo
	parents map[*Node]uint32 // a directory's parent, by directory
	device  bool             // writing over old data: inode tables not known to be zero
	// Special counts device nodes and inodes with extended attributes.
	Special int
}

// inodeInfo is where an inode's blocks are. One per inode: kept small.
type inodeInfo struct {
	ext       []fext // data extents, by logical block
	treeAt    uint64 // the first of its extent tree blocks, in a run; 0 for none
	xblock    uint64 // the extended attribute block, or 0
	dx        *dxDir // an indexed directory's layout
	dirBlocks int32  // a directory's blocks
	xattrs    bool   // it has attributes that need a block
}

// trees is the inode's extent tree blocks.
func (in *inodeInfo) trees() int {
	if in.treeAt == 0 {
		return 0
	}
	return treeBlocks(len(in.ext))
}

// fext is one extent: n blocks of the file from logical block lblk at
// physical block pblk.
type fext struct {
	lblk uint32
	pblk uint64
	n    uint32
}

// Size is the file system's size in bytes.
func (pl *Plan) Size() int64 { return int64(pl.geo.blocks) * BlockSize }

// Inodes is the file system's inode count.
func (pl *Plan) Inodes() int64 { return int64(pl.geo.inodes()) }

// UsedInodes is the inodes in use, the reserved ones included.
func (pl *Plan) UsedInodes() int64 { return int64(len(pl.nodes) - 1) }

// JournalBlocks is the journal's size in blocks.
func (pl *Plan) JournalBlocks() int64 { return int64(ext4fs.JournalBlocks(pl.geo.blocks)) }

// FreeBlocks is the blocks left free.
func (pl *Plan) FreeBlocks() int64 {
	return int64(pl.geo.blocks - pl.geo.reserved() - pl.alloc.used())
}

// Plan numbers the tree's inodes and places their blocks. The tree must
// not change afterwards.
func (t *Tree) Plan(p Params) (*Plan, error) {
	if len(p.Label) > 16 {
		return nil, fmt.Errorf("label %q: longer than 16 bytes", p.Label)
	}
	pl := &Plan{tree: t, p: p, data: newSpace()}
	if t.File != nil {
		if err := t.File.finish(); err != nil {
			return nil, err
		}
		pl.data = t.File.space
	}
	switch lf := t.Root.children["lost+found"]; {
	case lf == nil:
		t.set(t.Root, "lost+found", NewDir(0o700, 0, 0, p.Time).Fixed())
	case !lf.IsDir():
		return nil, errors.New("/lost+found: not a directory; ext4 needs it to be one")
	}
	if err := pl.number(); err != nil {
		return nil, err
	}
	if err := pl.measure(); err != nil {
		return nil, err
	}
	if err := pl.place(); err != nil {
		return nil, err
	}
	return pl, nil
}

// number gives inodes their numbers: the root 2, lost+found 11, the rest
// from 12 in directory order, depth first, names sorted; and counts links.
func (pl *Plan) number() error {
	root := pl.tree.Root
	lf := root.children["lost+found"]
	pl.nodes = make([]*Node, lostFoundIno+1, 64)
	pl.nodes[ext4fs.RootIno], pl.nodes[lostFoundIno] = root, lf
	root.ino, lf.ino = ext4fs.RootIno, lostFoundIno
	for _, n := range []*Node{root, lf} {
		n.links = 2
	}
	var walk func(d *Node) error
	walk = func(d *Node) error {
		for _, name := range d.Names() {
			c := d.children[name]
			if c.ino == 0 {
				if len(pl.nodes) >= 1<<32-1 {
					return errors.New("more than 2^32 inodes")
				}
				c.ino = uint32(len(pl.nodes))
				pl.nodes = append(pl.nodes, c)
				if c.IsDir() {
					c.links = 2
				}
			}
			if c.IsDir() {
				if c != lf || d != root {
					d.links++ // its ".."
				}
				if err := walk(c); err != nil {
					return err
				}
			} else {
				c.links++
				if c.links > maxLinks {
					return fmt.Errorf("%q: more than %d hard links", name, maxLinks)
				}
			}
		}
		return nil
	}
	root.links++ // lost+found's ".."
	if err := walk(root); err != nil {
		return err
	}
	for _, n := range pl.nodes {
		if n != nil && n.IsDir() && n.links > maxLinks {
			n.links = 1 // dir_nlink: too many to count
		}
	}
	return nil
}

// measure works out each inode's blocks other than its extent tree.
func (pl *Plan) measure() error {
	pl.info = make([]inodeInfo, len(pl.nodes))
	seed := hashSeed(pl.p.HashSeed)
	for ino, n := range pl.nodes {
		if n == nil {
			continue
		}
		in := &pl.info[ino]
		if len(n.Xattrs) > 0 {
			es, err := encodeXattrs(n.Xattrs)
			if err != nil {
				return fmt.Errorf("inode %d: %w", ino, err)
			}
			_, block, err := splitXattrs(es, ext4fs.InodeSize)
			if err != nil {
				return fmt.Errorf("inode %d: %w", ino, err)
			}
			in.xattrs = len(block) > 0
		}
		if len(n.Xattrs) > 0 || n.Type() == TypeChar || n.Type() == TypeBlock {
			pl.Special++
		}
		switch n.Type() {
		case TypeDir:
			in.dirBlocks = int32(len(dirLayout(n)))
			if in.dirBlocks > 1 {
				in.dx = dxLayout(n, seed)
				if len(in.dx.leaves) > maxDxLeaves {
					return fmt.Errorf("inode %d: directory of %d entries: more than two index levels hold", ino, len(n.children))
				}
				in.dirBlocks = int32(in.dx.blocks())
			} else if uint32(ino) == lostFoundIno {
				in.dirBlocks = lostFoundBlocks
			}
		case TypeReg:
			if n.Data.Size > maxFileBlocks*BlockSize {
				return fmt.Errorf("inode %d: file of %d bytes: larger than ext4's 16 TiB", ino, n.Data.Size)
			}
		}
	}
	return nil
}

// metaBlocks estimates the blocks that directories, long symlinks,
// attribute blocks and extent trees need.
func (pl *Plan) metaBlocks() uint64 {
	var n uint64
	for ino, in := range pl.info {
		node := pl.nodes[ino]
		if node == nil {
			continue
		}
		n += uint64(in.dirBlocks)
		if in.xattrs {
			n++
		}
		if node.Type() == TypeSymlink && len(node.Target) >= ext4fs.InoBlockLen {
			n++
		}
		if node.Type() == TypeReg {
			n += uint64(treeBlocks(len(node.Data.Runs)))
		}
	}
	return n
}

// place sizes the file system and places every block the file data did
// not take.
func (pl *Plan) place() error {
	inodes := uint64(len(pl.nodes))
	if pl.p.Size > 0 {
		if pl.p.Size < MinSize {
			return fmt.Errorf("size %d: below the minimum of %d bytes", pl.p.Size, MinSize)
		}
		geo, err := newGeometry(uint64(pl.p.Size)/BlockSize, inodes, false)
		if err == nil {
			err = pl.allocate(geo)
		}
		if err != nil {
			need := (pl.data.used() + pl.metaBlocks() + uint64(ext4fs.JournalBlocks(uint64(pl.p.Size)/BlockSize))) * BlockSize
			return fmt.Errorf("size %d is too small: the content needs about %d bytes and more for metadata: %w", pl.p.Size, need, ErrNoSpace)
		}
		return nil
	}
	free := uint64(max(pl.p.Free, 0)+BlockSize-1) / BlockSize
	inodes += 64 + uint64(max(pl.p.Free, 0))/ext4fs.InodeRatio
	// The data's blocks, the holes it left included, come first; the
	// metadata and the journal on top, then the free space.
	content := pl.data.next + pl.metaBlocks()
	blocks := content + free + content/50 + 64
	// A group's inodes fit one bitmap block: as many groups as that
	// takes, the last one at least half full.
	if groups := (inodes + BlockSize*8 - 1) / (BlockSize * 8); groups > 1 {
		blocks = max(blocks, (groups-1)*ext4fs.BlocksPerGroup+ext4fs.BlocksPerGroup/2)
	}
	for range 40 {
		blocks = max(roundUp(blocks, 256), MinSize/BlockSize)
		geo, err := newGeometry(blocks, inodes, true)
		if err != nil {
			if !errors.Is(err, ErrNoSpace) {
				return err
			}
			blocks *= 2
			continue
		}
		blocks = geo.blocks
		if err := pl.allocate(geo); err != nil {
			if !errors.Is(err, ErrNoSpace) {
				return err
			}
			blocks += max(blocks/16, pl.data.next+pl.metaBlocks()+uint64(ext4fs.JournalBlocks(blocks))+geo.overhead()-blocks)
			continue
		}
		if uint64(pl.FreeBlocks()) >= free {
			return nil
		}
		blocks += free - uint64(pl.FreeBlocks())
	}
	return fmt.Errorf("no layout found for %d inodes and %d blocks of content", inodes, content)
}

func roundUp(n, m uint64) uint64 { return (n + m - 1) / m * m }

// allocate places the metadata in geometry geo, after and between the
// blocks the file data took: the journal, the groups' bitmaps and inode
// tables, then directory, symlink and attribute blocks in inode order,
// then extent tree blocks.
func (pl *Plan) allocate(geo geometry) error {
	if uint64(len(pl.nodes)) > geo.inodes() {
		return ErrNoSpace
	}
	if pl.data.next > geo.blocks {
		return ErrNoSpace
	}
	a := pl.data.clone()
	a.limit = geo.blocks
	pl.alloc = a
	for i := range pl.info {
		pl.info[i].ext, pl.info[i].treeAt, pl.info[i].xblock = nil, 0, 0
	}
	if jb := ext4fs.JournalBlocks(geo.blocks); jb > 0 {
		runs, err := a.alloc(uint64(jb))
		if err != nil {
			return err
		}
		pl.journal = inodeInfo{ext: toExtents(0, runs)}
	}
	geo.blockBitmap = make([]uint64, geo.groups)
	geo.inodeBitmap = make([]uint64, geo.groups)
	geo.inodeTable = make([]uint64, geo.groups)
	for _, m := range [][]uint64{geo.blockBitmap, geo.inodeBitmap} {
		for g := range m {
			b, err := a.allocRun(1)
			if err != nil {
				return err
			}
			m[g] = b
		}
	}
	for g := range geo.inodeTable {
		b, err := a.allocRun(uint64(geo.itableBlocks))
		if err != nil {
			return err
		}
		geo.inodeTable[g] = b
	}
	pl.geo = geo
	for ino, n := range pl.nodes {
		if n == nil {
			continue
		}
		in := &pl.info[ino]
		switch {
		case n.IsDir():
			runs, err := a.alloc(uint64(in.dirBlocks))
			if err != nil {
				return err
			}
			in.ext = toExtents(0, runs)
		case n.Type() == TypeSymlink && len(n.Target) >= ext4fs.InoBlockLen:
			runs, err := a.alloc(1)
			if err != nil {
				return err
			}
			in.ext = toExtents(0, runs)
		case n.Type() == TypeReg:
			for _, r := range n.Data.Runs {
				in.ext = appendExtents(in.ext, uint32(r.Block), []extent{{r.At, uint64(r.N)}})
			}
		}
		if in.xattrs {
			runs, err := a.alloc(1)
			if err != nil {
				return err
			}
			in.xblock = runs[0].start
		}
	}
	for i := -1; i < len(pl.info); i++ {
		in := &pl.journal
		if i >= 0 {
			in = &pl.info[i]
		}
		if k := treeBlocks(len(in.ext)); k > 0 {
			b, err := a.allocRun(uint64(k))
			if err != nil {
				return err
			}
			in.treeAt = b
		}
	}
	return nil
}

// toExtents maps physical runs to extents from logical block lblk.
func toExtents(lblk uint32, runs []extent) []fext {
	return appendExtents(nil, lblk, runs)
}

// appendExtents adds physical runs from logical block lblk, merging with
// the last extent where both continue it, and splitting at the longest
// extent ext4 maps.
func appendExtents(out []fext, lblk uint32, runs []extent) []fext {
	for _, r := range runs {
		p, n := r.start, r.n
		for n > 0 {
			if k := len(out); k > 0 {
				last := &out[k-1]
				if last.lblk+last.n == lblk && last.pblk+uint64(last.n) == p && last.n < ext4fs.MaxExtentLen {
					take := min(n, uint64(ext4fs.MaxExtentLen-last.n))
					last.n += uint32(take)
					p, n, lblk = p+take, n-take, lblk+uint32(take)
					continue
				}
			}
			take := min(n, ext4fs.MaxExtentLen)
			out = append(out, fext{lblk: lblk, pblk: p, n: uint32(take)})
			p, n, lblk = p+take, n-take, lblk+uint32(take)
		}
	}
	return out
}
