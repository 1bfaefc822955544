// Package ext4fs is the ext4 on-disk layout, in one place for the code
// that writes ext4 (ext4w, which writes whole file systems for oci2disk and
// for mkext4's installs, and ext4img, which patches what mke2fs wrote) and
// the code that reads it (blockdev's root= probe): field offsets of the superblock, group descriptors and inodes as
// the kernel's fs/ext4/ext4.h has them, feature flags, the sparse_super
// backup rule and mke2fs's default journal size. Its subpackage csum has
// the metadata checksums.
//
// It is a leaf: only the standard library, no syscalls, so it builds and
// tests anywhere and costs PID 1 almost nothing.
package ext4fs

import "encoding/binary"

// LE is ext4's byte order. (The journal, jbd2, is big-endian.)
var LE = binary.LittleEndian

// The geometry both writers use: mke2fs's ext4 defaults.
const (
	BlockSize        = 4096
	InodeSize        = 256
	BlocksPerGroup   = 8 * BlockSize // one bitmap block maps one group
	InodesPerBlock   = BlockSize / InodeSize
	InodeRatio       = 16384 // bytes per inode, mke2fs's inode_ratio
	DescSize         = 64    // group descriptor size with 64bit
	LogGroupsPerFlex = 4     // mke2fs's flex_bg size of 16
	GroupsPerFlex    = 1 << LogGroupsPerFlex
)

// Superblock: where it is, and its fields (struct ext4_super_block).
const (
	SuperOffset = 1024 // bytes from the start of the device
	SuperSize   = 1024
	Magic       = 0xEF53

	SbInodesCount      = 0x00
	SbBlocksCountLo    = 0x04
	SbRBlocksCountLo   = 0x08
	SbFreeBlocksLo     = 0x0C
	SbFreeInodes       = 0x10
	SbFirstDataBlock   = 0x14
	SbLogBlockSize     = 0x18
	SbLogClusterSize   = 0x1C
	SbBlocksPerGroup   = 0x20
	SbClustersPerGroup = 0x24
	SbInodesPerGroup   = 0x28
	SbWtime            = 0x30
	SbMaxMntCount      = 0x36
	SbMagic            = 0x38
	SbState            = 0x3A
	SbErrors           = 0x3C
	SbLastcheck        = 0x40
	SbRevLevel         = 0x4C
	SbFirstIno         = 0x54
	SbInodeSize        = 0x58
	SbBlockGroupNr     = 0x5A
	SbFeatureCompat    = 0x5C
	SbFeatureIncompat  = 0x60
	SbFeatureRoCompat  = 0x64
	SbUUID             = 0x68 // 16 bytes
	SbVolumeName       = 0x78 // 16 bytes, NUL-padded
	SbJournalInum      = 0xE0
	SbHashSeed         = 0xEC // 16 bytes
	SbDefHashVersion   = 0xFC
	SbJnlBackupType    = 0xFD
	SbDescSize         = 0xFE
	SbDefaultMountOpts = 0x100
	SbMkfsTime         = 0x108
	SbJnlBlocks        = 0x10C // 17 words: the journal's i_block, i_size_high, i_size
	SbBlocksCountHi    = 0x150
	SbRBlocksCountHi   = 0x154
	SbFreeBlocksHi     = 0x158
	SbMinExtraIsize    = 0x15C
	SbWantExtraIsize   = 0x15E
	SbFlags            = 0x160
	SbLogGroupsPerFlex = 0x174
	SbChecksumType     = 0x175
	SbOverheadClusters = 0x248
	SbChecksumSeed     = 0x270
	SbWtimeHi          = 0x274
	SbMkfsTimeHi       = 0x276
	SbLastcheckHi      = 0x277
	SbChecksum         = 0x3FC
)

// Feature flags.
const (
	// s_feature_compat
	CompatHasJournal = 0x4
	CompatExtAttr    = 0x8
	CompatDirIndex   = 0x20
	// s_feature_incompat
	IncompatFiletype = 0x2
	IncompatMetaBG   = 0x10
	IncompatExtents  = 0x40
	Incompat64bit    = 0x80
	IncompatFlexBG   = 0x200
	IncompatCsumSeed = 0x2000
	// s_feature_ro_compat
	RoCompatSparseSuper  = 0x1
	RoCompatLargeFile    = 0x2
	RoCompatHugeFile     = 0x8
	RoCompatGdtCsum      = 0x10
	RoCompatDirNlink     = 0x20
	RoCompatExtraIsize   = 0x40
	RoCompatMetadataCsum = 0x400
)

// Group descriptor fields (struct ext4_group_desc). A field split in
// halves has its low half in the first 32 bytes and its high half, with
// 64bit, in the second.
const (
	GdBlockBitmapLo     = 0x00
	GdInodeBitmapLo     = 0x04
	GdInodeTableLo      = 0x08
	GdFreeBlocksLo      = 0x0C
	GdFreeInodesLo      = 0x0E
	GdUsedDirsLo        = 0x10
	GdFlags             = 0x12
	GdBlockBitmapCsumLo = 0x18
	GdInodeBitmapCsumLo = 0x1A
	GdItableUnusedLo    = 0x1C
	GdChecksum          = 0x1E
	GdBlockBitmapHi     = 0x20
	GdInodeBitmapHi     = 0x24
	GdInodeTableHi      = 0x28
	GdFreeBlocksHi      = 0x2C
	GdFreeInodesHi      = 0x2E
	GdUsedDirsHi        = 0x30
	GdItableUnusedHi    = 0x32
	GdBlockBitmapCsumHi = 0x38
	GdInodeBitmapCsumHi = 0x3A

	// bg_flags
	BgInodeUninit = 0x1
	BgBlockUninit = 0x2
)

// Inode fields (struct ext4_inode). Those at or past GoodOldInodeSize are
// there only if i_extra_isize covers them: see InodeHasField.
const (
	GoodOldInodeSize = 128

	InoMode        = 0x00
	InoUIDLo       = 0x02
	InoSizeLo      = 0x04
	InoAtime       = 0x08
	InoCtime       = 0x0C
	InoMtime       = 0x10
	InoGIDLo       = 0x18
	InoLinksCount  = 0x1A
	InoBlocksLo    = 0x1C // in 512-byte sectors
	InoFlags       = 0x20
	InoBlock       = 0x28 // i_block: 60 bytes, the extent tree's root
	InoBlockLen    = 60
	InoGeneration  = 0x64
	InoSizeHi      = 0x6C
	InoUIDHi       = 0x78
	InoGIDHi       = 0x7A
	InoChecksumLo  = 0x7C
	InoExtraIsize  = 0x80
	InoChecksumHi  = 0x82
	InoCtimeExtra  = 0x84
	InoMtimeExtra  = 0x88
	InoAtimeExtra  = 0x8C
	InoCrtime      = 0x90
	InoCrtimeExtra = 0x94

	// ExtraIsize is the i_extra_isize of the fields past 128 bytes that
	// the kernel knows, up to i_projid.
	ExtraIsize = 32

	InodeFlagExtents = 0x80000
	ExtentMagic      = 0xF30A
	// MaxExtentLen is the most blocks one initialised extent maps.
	MaxExtentLen = 32768
)

// Reserved inode numbers.
const (
	RootIno    = 2
	JournalIno = 8
	// GoodOldFirstIno is the first inode that is not reserved, where
	// mke2fs puts lost+found.
	GoodOldFirstIno = 11
)

// Directory entries.
const (
	FileTypeDir = 2
	// DirTailLen is the checksum entry at the end of a directory block,
	// with file type DirTailFileType.
	DirTailLen      = 12
	DirTailFileType = 0xDE
)

// The journal (jbd2) superblock, big-endian.
const (
	JBD2Magic        = 0xC03B3998
	JBD2SuperblockV2 = 4
)

// InodeHasField says whether the inode raw holds the n-byte field at off:
// always below 128 bytes, past that only within i_extra_isize.
func InodeHasField(raw []byte, off, n int) bool {
	if off+n <= GoodOldInodeSize {
		return off+n <= len(raw)
	}
	if len(raw) < GoodOldInodeSize+2 {
		return false
	}
	return off+n <= GoodOldInodeSize+int(LE.Uint16(raw[InoExtraIsize:])) && off+n <= len(raw)
}
