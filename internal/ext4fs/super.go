package ext4fs

import (
	"errors"
	"fmt"
)

// ErrNoMagic is returned, wrapped, for bytes that are not an ext2/3/4
// superblock.
var ErrNoMagic = errors.New("no ext2/3/4 superblock magic")

// Superblock is what the code here reads from a superblock. It checks no
// more than the magic: a caller that goes on to read the file system
// checks the geometry and the checksum it relies on.
type Superblock struct {
	BlockSize      int64
	Blocks         int64
	FreeBlocks     int64
	FreeInodes     int64
	BlocksPerGroup int64
	InodesPerGroup int64
	FirstDataBlock int64
	FirstIno       uint32
	InodeSize      int
	DescSize       int64 // 32 without 64bit
	Compat         uint32
	Incompat       uint32
	RoCompat       uint32
	UUID           [16]byte
	Label          string
	ChecksumSeed   uint32 // s_checksum_seed: the seed with IncompatCsumSeed
}

// ParseSuperblock reads the superblock b, the SuperSize bytes found at
// SuperOffset.
func ParseSuperblock(b []byte) (Superblock, error) {
	if len(b) < SuperSize {
		return Superblock{}, fmt.Errorf("superblock: %d bytes; want %d", len(b), SuperSize)
	}
	if LE.Uint16(b[SbMagic:]) != Magic {
		return Superblock{}, ErrNoMagic
	}
	s := Superblock{
		Blocks:         int64(LE.Uint32(b[SbBlocksCountLo:])),
		FreeBlocks:     int64(LE.Uint32(b[SbFreeBlocksLo:])),
		FreeInodes:     int64(LE.Uint32(b[SbFreeInodes:])),
		BlocksPerGroup: int64(LE.Uint32(b[SbBlocksPerGroup:])),
		InodesPerGroup: int64(LE.Uint32(b[SbInodesPerGroup:])),
		FirstDataBlock: int64(LE.Uint32(b[SbFirstDataBlock:])),
		FirstIno:       LE.Uint32(b[SbFirstIno:]),
		InodeSize:      int(LE.Uint16(b[SbInodeSize:])),
		DescSize:       32,
		Compat:         LE.Uint32(b[SbFeatureCompat:]),
		Incompat:       LE.Uint32(b[SbFeatureIncompat:]),
		RoCompat:       LE.Uint32(b[SbFeatureRoCompat:]),
		Label:          cstring(b[SbVolumeName : SbVolumeName+16]),
		ChecksumSeed:   LE.Uint32(b[SbChecksumSeed:]),
	}
	copy(s.UUID[:], b[SbUUID:])
	if log := LE.Uint32(b[SbLogBlockSize:]); log <= 6 { // up to 64 KiB; else 0
		s.BlockSize = 1024 << log
	}
	if s.Incompat&Incompat64bit != 0 {
		s.DescSize = int64(LE.Uint16(b[SbDescSize:]))
		s.Blocks |= int64(LE.Uint32(b[SbBlocksCountHi:])) << 32
		s.FreeBlocks |= int64(LE.Uint32(b[SbFreeBlocksHi:])) << 32
	}
	return s, nil
}

// Type is the name the file system mounts as: ext4 with any of the
// features ext3 lacks (extents, flex_bg, 64bit), else ext3 with a
// journal, else ext2.
func (s *Superblock) Type() string {
	switch {
	case s.Incompat&(IncompatExtents|IncompatFlexBG|Incompat64bit) != 0:
		return "ext4"
	case s.Compat&CompatHasJournal != 0:
		return "ext3"
	}
	return "ext2"
}

// MetadataCsum says whether metadata carries crc32c checksums.
func (s *Superblock) MetadataCsum() bool { return s.RoCompat&RoCompatMetadataCsum != 0 }

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
