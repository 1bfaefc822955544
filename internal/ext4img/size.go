// Package ext4img makes ext4 disk images from a directory with
// mkfs.ext4 -d, sizes them, and patches the few inode and superblock fields
// that mkfs.ext4 cannot be told (ownership from a staging table, reproducible
// times). It needs e2fsprogs (mkfs.ext4, debugfs) on PATH and no privileges.
package ext4img

import (
	"fmt"
	"strconv"
	"strings"
)

// Fixed geometry of the images made here.
const (
	BlockSize      = 4096
	InodeSize      = 256
	blocksPerGroup = 8 * BlockSize
	inodeRatio     = 16384 // bytes of headroom per spare inode, mke2fs's default
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

// FormatSize prints a byte count in KiB (below 1 MiB), MiB or GiB.
func FormatSize(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	if n >= 10<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
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
		return Layout{}, fmt.Errorf("size %s: below the minimum of %s", FormatSize(size), FormatSize(MinSize))
	}
	inodes := max(c.Inodes+64, size/inodeRatio)
	need := c.Blocks + c.Blocks/100 + 256 + overhead(b, inodes)
	if need > b {
		return Layout{}, fmt.Errorf("size %s is too small: the content needs about %s", FormatSize(size), FormatSize(need*BlockSize))
	}
	return Layout{Size: b * BlockSize, Inodes: inodes, JournalBlocks: journalBlocks(b)}, nil
}

// overhead estimates the metadata blocks of an ext4 file system of b blocks
// and the given inodes: inode tables, bitmaps, superblock and group
// descriptor copies with their reserve for growth, journal, root and
// lost+found.
func overhead(b, inodes int64) int64 {
	groups := (b + blocksPerGroup - 1) / blocksPerGroup
	ipg := roundUp((inodes+groups-1)/groups, BlockSize/InodeSize)
	itable := groups * ipg * InodeSize / BlockSize
	gdt := (groups*64 + BlockSize - 1) / BlockSize
	maxGroups := (min(b*1024, 1<<32-1) + blocksPerGroup - 1) / blocksPerGroup
	rsv := min(max((maxGroups*64+BlockSize-1)/BlockSize-gdt, 0), BlockSize/4)
	backups := int64(0)
	for g := int64(0); g < groups; g++ {
		if sparseGroup(g) {
			backups++
		}
	}
	return itable + 2*groups + backups*(1+gdt+rsv) + journalBlocks(b) + 5
}

func sparseGroup(g int64) bool {
	if g <= 1 {
		return true
	}
	for _, p := range []int64{3, 5, 7} {
		n := p
		for n < g {
			n *= p
		}
		if n == g {
			return true
		}
	}
	return false
}

// journalBlocks is mke2fs's default journal size for b blocks of 4 KiB.
func journalBlocks(b int64) int64 {
	switch {
	case b < 32768:
		return 1024
	case b < 256*1024:
		return 4096
	case b < 512*1024:
		return 8192
	case b < 4096*1024:
		return 16384
	case b < 8192*1024:
		return 32768
	case b < 16384*1024:
		return 65536
	case b < 32768*1024:
		return 131072
	}
	return 262144
}

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }
