// Package ext4img makes ext4 disk images from a directory with
// mkfs.ext4 -d, sizes them, and patches the few inode and superblock fields
// that mkfs.ext4 cannot be told (ownership from a staging table, reproducible
// times). It needs e2fsprogs (mkfs.ext4, debugfs) on PATH and no privileges.
package ext4img

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/units"
)

// Fixed geometry of the images made here: mke2fs's ext4 defaults.
const (
	BlockSize  = ext4fs.BlockSize
	InodeSize  = ext4fs.InodeSize
	inodeRatio = ext4fs.InodeRatio // bytes of headroom per spare inode
)

// ParseSize reads a size such as "64M", "1G", "512k", "100MiB", "1.5G" or a
// plain number of bytes. Units are powers of 1024.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num := t[:i]
	unit := strings.ToUpper(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	shift := 0
	switch unit {
	case "":
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	case "T":
		shift = 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit (use K, M, G, T)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: not a size", s)
	}
	v := f * float64(int64(1)<<shift)
	if v > 1<<60 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(v), nil
}

// Content is what a tree needs on disk.
type Content struct {
	Inodes int64 // inodes, hard links counted once
	Blocks int64 // 4 KiB blocks of file data, directories and long symlinks
}

// Layout is the geometry chosen for an image.
type Layout struct {
	Size          int64 // bytes, a multiple of 1 MiB
	Inodes        int64
	JournalBlocks int64
}

// minBlocks keeps images above mke2fs's limits for a journal (8 MiB).
const minBlocks = 4096

// MinSize is the smallest image made.
const MinSize = minBlocks * BlockSize

// AutoLayout sizes an image for content plus free bytes of headroom.
func AutoLayout(c Content, free int64) Layout {
	inodes := c.Inodes + 64 + free/inodeRatio
	need := c.Blocks + c.Blocks/100 + 256 + (free+BlockSize-1)/BlockSize
	b := need
	for i := 0; i < 20; i++ {
		next := roundUp(need+overhead(b, inodes), 256)
		if next < minBlocks {
			next = minBlocks
		}
		if next == b {
			break
		}
		b = next
	}
	return Layout{Size: b * BlockSize, Inodes: inodes, JournalBlocks: journalBlocks(b)}
}

// FixedLayout lays out an image of a given size, or says why the content
// cannot fit.
func FixedLayout(c Content, size int64) (Layout, error) {
	b := size / BlockSize
	if b < minBlocks {
		return Layout{}, fmt.Errorf("size %s: below the minimum of %s", units.Bytes(size), units.Bytes(MinSize))
	}
	inodes := max(c.Inodes+64, size/inodeRatio)
	need := c.Blocks + c.Blocks/100 + 256 + overhead(b, inodes)
	if need > b {
		return Layout{}, fmt.Errorf("size %s is too small: the content needs about %s", units.Bytes(size), units.Bytes(need*BlockSize))
	}
	return Layout{Size: b * BlockSize, Inodes: inodes, JournalBlocks: journalBlocks(b)}, nil
}

// overhead estimates the metadata blocks of an ext4 file system of b blocks
// and the given inodes: inode tables, bitmaps, superblock and group
// descriptor copies with their reserve for growth (resize_inode), journal,
// root and lost+found.
func overhead(b, inodes int64) int64 {
	groups := int64(ext4fs.Groups(uint64(b)))
	ipg := roundUp((inodes+groups-1)/groups, ext4fs.InodesPerBlock)
	itable := groups * ipg * InodeSize / BlockSize
	gdt := int64(ext4fs.DescBlocks(uint64(groups)))
	maxGroups := int64(ext4fs.Groups(uint64(min(b*1024, 1<<32-1))))
	rsv := min(max(int64(ext4fs.DescBlocks(uint64(maxGroups)))-gdt, 0), BlockSize/4)
	backups := int64(0)
	for g := range groups {
		if ext4fs.HasSuper(uint64(g)) {
			backups++
		}
	}
	return itable + 2*groups + backups*(1+gdt+rsv) + journalBlocks(b) + 5
}

// journalBlocks is the journal mke2fs is told to make (Make's -J size=):
// its own default.
func journalBlocks(b int64) int64 { return int64(ext4fs.JournalBlocks(uint64(b))) }

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }
