package ext4fs

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32c continues a checksum the way ext4 does (the kernel's crc32c_le:
// no inversion on the way in or out, unlike hash/crc32's Update). ext4
// starts every chain from ^0.
func CRC32c(crc uint32, p []byte) uint32 {
	return ^crc32.Update(^crc, castagnoli, p)
}

func crc32cUint32(crc, v uint32) uint32 {
	var b [4]byte
	LE.PutUint32(b[:], v)
	return CRC32c(crc, b[:])
}

// CsumSeed is the seed of every metadata checksum of a file system
// without IncompatCsumSeed: the crc32c of its UUID.
func CsumSeed(uuid [16]byte) uint32 { return CRC32c(^uint32(0), uuid[:]) }

// InodeSeed seeds the checksum of an inode and of its directory blocks:
// the file system's seed, then the inode number and generation.
func InodeSeed(seed, ino, generation uint32) uint32 {
	return crc32cUint32(crc32cUint32(seed, ino), generation)
}

// InodeChecksum is ext4_inode_csum of inode ino: the inode, its generation
// included, taken with its checksum fields as zero. An inode with no room
// for the high half (see InodeHasField) keeps only the low 16 bits.
func InodeChecksum(seed, ino uint32, raw []byte) uint32 {
	c := InodeSeed(seed, ino, LE.Uint32(raw[InoGeneration:]))
	var zero [2]byte
	c = CRC32c(c, raw[:InoChecksumLo])
	c = CRC32c(c, zero[:])
	c = CRC32c(c, raw[InoChecksumLo+2:GoodOldInodeSize])
	if len(raw) > GoodOldInodeSize {
		if InodeHasField(raw, InoChecksumHi, 2) {
			c = CRC32c(c, raw[GoodOldInodeSize:InoChecksumHi])
			c = CRC32c(c, zero[:])
			c = CRC32c(c, raw[InoChecksumHi+2:])
		} else {
			c = CRC32c(c, raw[GoodOldInodeSize:])
		}
	}
	if !InodeHasField(raw, InoChecksumHi, 2) {
		c &= 0xFFFF
	}
	return c
}

// StoredInodeChecksum is the checksum an inode carries.
func StoredInodeChecksum(raw []byte) uint32 {
	c := uint32(LE.Uint16(raw[InoChecksumLo:]))
	if InodeHasField(raw, InoChecksumHi, 2) {
		c |= uint32(LE.Uint16(raw[InoChecksumHi:])) << 16
	}
	return c
}

// SetInodeChecksum stores inode ino's checksum in it.
func SetInodeChecksum(seed, ino uint32, raw []byte) {
	c := InodeChecksum(seed, ino, raw)
	LE.PutUint16(raw[InoChecksumLo:], uint16(c))
	if InodeHasField(raw, InoChecksumHi, 2) {
		LE.PutUint16(raw[InoChecksumHi:], uint16(c>>16))
	}
}

// SuperChecksum is the checksum of a 1024-byte superblock, s_checksum.
func SuperChecksum(sb []byte) uint32 { return CRC32c(^uint32(0), sb[:SbChecksum]) }

// GroupDescChecksum is bg_checksum of group g's descriptor d (DescSize
// bytes), taken with the checksum field as zero.
func GroupDescChecksum(seed, g uint32, d []byte) uint16 {
	var zero [2]byte
	c := crc32cUint32(seed, g)
	c = CRC32c(c, d[:GdChecksum])
	c = CRC32c(c, zero[:])
	c = CRC32c(c, d[GdChecksum+2:])
	return uint16(c)
}
