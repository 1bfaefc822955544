package ext4fs

// HasSuper says whether block group g holds a superblock and group
// descriptor backup under sparse_super: groups 0 and 1 and the powers of
// 3, 5 and 7.
func HasSuper(g uint64) bool {
	if g <= 1 {
		return true
	}
	for _, base := range []uint64{3, 5, 7} {
		n := base
		for n < g {
			n *= base
		}
		if n == g {
			return true
		}
	}
	return false
}

// JournalBlocks is the journal mke2fs makes by default for a file system
// of blocks 4 KiB blocks: e2fsprogs' ext2fs_default_journal_size (1.47),
// from 4 MiB below 128 MiB up to 1 GiB from 128 GiB. Below 2048 blocks
// mke2fs makes no journal, and it is 0.
func JournalBlocks(blocks uint64) uint32 {
	for _, step := range journalSizes {
		if blocks < step.below {
			return step.journal
		}
	}
	return 262144
}

var journalSizes = []struct {
	below   uint64 // file system blocks
	journal uint32 // journal blocks
}{
	{2048, 0},
	{32768, 1024},          // 128 MiB: 4 MiB
	{256 * 1024, 4096},     // 1 GiB: 16 MiB
	{512 * 1024, 8192},     // 2 GiB: 32 MiB
	{4096 * 1024, 16384},   // 16 GiB: 64 MiB
	{8192 * 1024, 32768},   // 32 GiB: 128 MiB
	{16384 * 1024, 65536},  // 64 GiB: 256 MiB
	{32768 * 1024, 131072}, // 128 GiB: 512 MiB
}

// Groups is the number of block groups of a file system of blocks blocks
// of 4 KiB (whose first data block is 0).
func Groups(blocks uint64) uint64 { return (blocks + BlocksPerGroup - 1) / BlocksPerGroup }

// DescBlocks is the blocks that the descriptors of groups groups take.
func DescBlocks(groups uint64) uint64 { return (groups*DescSize + BlockSize - 1) / BlockSize }

// ExtraTime is an inode time's *_extra field: nanoseconds, and the two
// epoch bits that extend the signed 32-bit seconds to 2446.
func ExtraTime(sec int64, nsec uint32) uint32 {
	epoch := uint32((sec-int64(int32(sec)))>>32) & 3
	return nsec<<2 | epoch
}

// DecodeTime reads an inode time from its 32-bit seconds and, if the
// inode has it, its *_extra field (0 otherwise).
func DecodeTime(lo, extra uint32) (sec int64, nsec uint32) {
	return int64(int32(lo)) + int64(extra&3)<<32, extra >> 2
}
