// Package csum is ext4's metadata checksums (metadata_csum): crc32c, as
// the kernel takes it, over the structures ext4fs lays out. It is apart
// from ext4fs so that reading a superblock (blockdev, in PID 1) does not
// link hash/crc32.
package csum

import (
	"hash/crc32"

	"github.com/ginit-dev/ginit/internal/ext4fs"
)

var le = ext4fs.LE

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32c continues a checksum the way ext4 does (the kernel's crc32c_le:
// no inversion on the way in or out, unlike hash/crc32's Update). ext4
// starts every chain from ^0.
func CRC32c(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

func crc32cUint32(crc, v uint32) uint32 {
	var b [4]byte
	le.PutUint32(b[:], v)
	return CRC32c(crc, b[:])
}

// Seed is the seed of every metadata checksum of a file system without
// IncompatCsumSeed: the crc32c of its UUID.
func Seed(uuid [16]byte) uint32 { return CRC32c(^uint32(0), uuid[:]) }

// SeedOf is the seed of every metadata checksum of the file system whose
// superblock sb is.
func SeedOf(sb *ext4fs.Superblock) uint32 {
	if sb.Incompat&ext4fs.IncompatCsumSeed != 0 {
		return sb.ChecksumSeed
	}
	return Seed(sb.UUID)
}

// InodeSeed seeds the checksum of an inode and of its directory blocks:
// the file system's seed, then the inode number and generation.
func InodeSeed(seed, ino, generation uint32) uint32 {
	return crc32cUint32(crc32cUint32(seed, ino), generation)
}

// Inode is ext4_inode_csum of inode ino: the inode, its generation
// included, taken with its checksum fields as zero. An inode with no room
// for the high half (see ext4fs.InodeHasField) keeps only the low 16 bits.
func Inode(seed, ino uint32, raw []byte) uint32 {
	c := InodeSeed(seed, ino, le.Uint32(raw[ext4fs.InoGeneration:]))
	var zero [2]byte
	c = CRC32c(c, raw[:ext4fs.InoChecksumLo])
	c = CRC32c(c, zero[:])
	c = CRC32c(c, raw[ext4fs.InoChecksumLo+2:ext4fs.GoodOldInodeSize])
	if len(raw) > ext4fs.GoodOldInodeSize {
		if ext4fs.InodeHasField(raw, ext4fs.InoChecksumHi, 2) {
			c = CRC32c(c, raw[ext4fs.GoodOldInodeSize:ext4fs.InoChecksumHi])
			c = CRC32c(c, zero[:])
			c = CRC32c(c, raw[ext4fs.InoChecksumHi+2:])
		} else {
			c = CRC32c(c, raw[ext4fs.GoodOldInodeSize:])
		}
	}
	if !ext4fs.InodeHasField(raw, ext4fs.InoChecksumHi, 2) {
		c &= 0xFFFF
	}
	return c
}

// StoredInode is the checksum an inode carries.
func StoredInode(raw []byte) uint32 {
	c := uint32(le.Uint16(raw[ext4fs.InoChecksumLo:]))
	if ext4fs.InodeHasField(raw, ext4fs.InoChecksumHi, 2) {
		c |= uint32(le.Uint16(raw[ext4fs.InoChecksumHi:])) << 16
	}
	return c
}

// SetInode stores inode ino's checksum in it.
func SetInode(seed, ino uint32, raw []byte) {
	c := Inode(seed, ino, raw)
	le.PutUint16(raw[ext4fs.InoChecksumLo:], uint16(c))
	if ext4fs.InodeHasField(raw, ext4fs.InoChecksumHi, 2) {
		le.PutUint16(raw[ext4fs.InoChecksumHi:], uint16(c>>16))
	}
}

// Super is the checksum of a 1024-byte superblock, s_checksum.
func Super(sb []byte) uint32 { return CRC32c(^uint32(0), sb[:ext4fs.SbChecksum]) }

// GroupDesc is bg_checksum of group g's descriptor d (ext4fs.DescSize
// bytes), taken with the checksum field as zero.
func GroupDesc(seed, g uint32, d []byte) uint16 {
	var zero [2]byte
	c := crc32cUint32(seed, g)
	c = CRC32c(c, d[:ext4fs.GdChecksum])
	c = CRC32c(c, zero[:])
	c = CRC32c(c, d[ext4fs.GdChecksum+2:])
	return uint16(c)
}
