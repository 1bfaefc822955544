package ext4img

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

var le = binary.LittleEndian

// Superblock field offsets (see the kernel's struct ext4_super_block).
const (
	sbOffset        = 1024
	sbLen           = 1024
	sbFreeBlocksLo  = 0x0C
	sbFreeInodes    = 0x10
	sbFirstDataBlk  = 0x14
	sbLogBlockSize  = 0x18
	sbBlocksPerGrp  = 0x20
	sbInodesPerGrp  = 0x28
	sbWtime         = 0x30
	sbMagic         = 0x38
	sbLastcheck     = 0x40
	sbFirstIno      = 0x54
	sbInodeSize     = 0x58
	sbIncompat      = 0x60
	sbRoCompat      = 0x64
	sbUUID          = 0x68
	sbLabel         = 0x78
	sbDescSize      = 0xFE
	sbMkfsTime      = 0x108
	sbBlocksCountLo = 0x04
	sbBlocksCountHi = 0x150
	sbFreeBlocksHi  = 0x158
	sbChecksumSeed  = 0x270
	sbWtimeHi       = 0x274
	sbMkfsTimeHi    = 0x276
	sbLastcheckHi   = 0x277
	sbChecksum      = 0x3FC

	incompat64bit    = 0x80
	incompatCsumSeed = 0x2000
	roCompatGdtCsum  = 0x10
	roCompatMetaCsum = 0x400
	bgInodeUninit    = 0x1
	ext4Magic        = 0xEF53
	goodOldInodeSize = 128
	inodeChecksumLo  = 0x7C
	inodeChecksumHi  = 0x82
	inodeExtraIsize  = 0x80
	inodeGeneration  = 0x64
	inodeLinksCount  = 0x1A
	inodeUIDHigh     = 0x78
	inodeGIDHigh     = 0x7A
	inodeCrtime      = 0x90
	inodeCrtimeExtra = 0x94
	inodeAtime       = 0x08
	inodeCtime       = 0x0C
	inodeMtime       = 0x10
	inodeCtimeExtra  = 0x84
	inodeMtimeExtra  = 0x88
	inodeAtimeExtra  = 0x8C
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c_le: no inversion on the way in or out.
func crc32c(crc uint32, p []byte) uint32 { return ^crc32.Update(^crc, castagnoli, p) }

// Superblock is the part of an ext4 superblock this package reads.
type Superblock struct {
	raw          []byte
	BlockSize    int64
	Blocks       int64
	FreeBlocks   int64
	FreeInodes   int64
	InodesPerGrp int64
	FirstIno     uint32
	InodeSize    int
	UUID         [16]byte
	Label        string
	metaCsum     bool
	gdtCsum      bool
	descSize     int64
	firstData    int64
	blocksPerGrp int64
}

func readSuperblock(f io.ReaderAt) (*Superblock, error) {
	b := make([]byte, sbLen)
	if _, err := f.ReadAt(b, sbOffset); err != nil {
		return nil, fmt.Errorf("reading superblock: %w", err)
	}
	if le.Uint16(b[sbMagic:]) != ext4Magic {
		return nil, errors.New("no ext4 superblock")
	}
	sb := &Superblock{
		raw:          b,
		BlockSize:    1024 << le.Uint32(b[sbLogBlockSize:]),
		Blocks:       int64(le.Uint32(b[sbBlocksCountLo:])),
		FreeBlocks:   int64(le.Uint32(b[sbFreeBlocksLo:])),
		FreeInodes:   int64(le.Uint32(b[sbFreeInodes:])),
		InodesPerGrp: int64(le.Uint32(b[sbInodesPerGrp:])),
		FirstIno:     le.Uint32(b[sbFirstIno:]),
		InodeSize:    int(le.Uint16(b[sbInodeSize:])),
		metaCsum:     le.Uint32(b[sbRoCompat:])&roCompatMetaCsum != 0,
		gdtCsum:      le.Uint32(b[sbRoCompat:])&roCompatGdtCsum != 0,
		descSize:     32,
		firstData:    int64(le.Uint32(b[sbFirstDataBlk:])),
		blocksPerGrp: int64(le.Uint32(b[sbBlocksPerGrp:])),
	}
	copy(sb.UUID[:], b[sbUUID:])
	sb.Label = cstring(b[sbLabel : sbLabel+16])
	if le.Uint32(b[sbIncompat:])&incompat64bit != 0 {
		sb.descSize = int64(le.Uint16(b[sbDescSize:]))
		sb.Blocks |= int64(le.Uint32(b[sbBlocksCountHi:])) << 32
		sb.FreeBlocks |= int64(le.Uint32(b[sbFreeBlocksHi:])) << 32
	}
	if sb.metaCsum && crc32c(^uint32(0), b[:sbChecksum]) != le.Uint32(b[sbChecksum:]) {
		return nil, errors.New("superblock checksum does not match")
	}
	return sb, nil
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// csumSeed is the seed of every metadata checksum.
func (sb *Superblock) csumSeed() uint32 {
	if le.Uint32(sb.raw[sbIncompat:])&incompatCsumSeed != 0 {
		return le.Uint32(sb.raw[sbChecksumSeed:])
	}
	return crc32c(^uint32(0), sb.UUID[:])
}

// ReadSuperblock reads the primary superblock of the image at path.
func ReadSuperblock(path string) (*Superblock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sb, err := readSuperblock(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sb, nil
}

// SetSuperblockTimes sets the primary superblock's write, creation and
// last-check times to t and updates its checksum.
func SetSuperblockTimes(path string, t int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	sb, err := readSuperblock(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b := sb.raw
	for _, o := range [][2]int{{sbWtime, sbWtimeHi}, {sbMkfsTime, sbMkfsTimeHi}, {sbLastcheck, sbLastcheckHi}} {
		le.PutUint32(b[o[0]:], uint32(t))
		b[o[1]] = byte(t >> 32)
	}
	if sb.metaCsum {
		le.PutUint32(b[sbChecksum:], crc32c(^uint32(0), b[:sbChecksum]))
	}
	if _, err := f.WriteAt(b, sbOffset); err != nil {
		return fmt.Errorf("%s: writing superblock: %w", path, err)
	}
	return f.Close()
}

// Time is an inode timestamp.
type Time struct {
	Sec  int64
	Nsec uint32
}

// Attrs are the inode fields a Patch callback may change.
type Attrs struct {
	Mode                        uint16 // type and permission bits
	UID, GID                    uint32
	Atime, Ctime, Mtime, Crtime Time
	Links                       uint16 // read only
}

// Patch calls fn for every inode in use in the image at path, in inode
// number order, and writes back the fields fn changed, with the inode
// checksum updated. It checks every checksum it reads first, so an image it
// does not understand is refused rather than damaged.
func Patch(path string, fn func(ino uint32, a *Attrs) error) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := patch(f, fn); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

func patch(f *os.File, fn func(ino uint32, a *Attrs) error) error {
	sb, err := readSuperblock(f)
	if err != nil {
		return err
	}
	if sb.InodeSize < goodOldInodeSize || sb.blocksPerGrp == 0 || sb.InodesPerGrp == 0 {
		return errors.New("unsupported superblock geometry")
	}
	groups := (sb.Blocks - sb.firstData + sb.blocksPerGrp - 1) / sb.blocksPerGrp
	gdt := make([]byte, groups*sb.descSize)
	if _, err := f.ReadAt(gdt, (sb.firstData+1)*sb.BlockSize); err != nil {
		return fmt.Errorf("reading group descriptors: %w", err)
	}
	seed := sb.csumSeed()
	isz := int64(sb.InodeSize)
	bitmap := make([]byte, sb.BlockSize)
	table := make([]byte, sb.InodesPerGrp*isz)
	for g := int64(0); g < groups; g++ {
		d := gdt[g*sb.descSize : (g+1)*sb.descSize]
		if le.Uint16(d[0x12:])&bgInodeUninit != 0 {
			continue
		}
		bmBlock := int64(le.Uint32(d[0x04:]))
		itBlock := int64(le.Uint32(d[0x08:]))
		unused := int64(le.Uint16(d[0x1C:]))
		if sb.descSize >= 64 {
			bmBlock |= int64(le.Uint32(d[0x24:])) << 32
			itBlock |= int64(le.Uint32(d[0x28:])) << 32
			unused |= int64(le.Uint16(d[0x32:])) << 16
		}
		used := sb.InodesPerGrp
		if sb.metaCsum || sb.gdtCsum {
			used -= unused
		}
		if used <= 0 {
			continue
		}
		if _, err := f.ReadAt(bitmap, bmBlock*sb.BlockSize); err != nil {
			return fmt.Errorf("group %d: reading inode bitmap: %w", g, err)
		}
		tab := table[:used*isz]
		if _, err := f.ReadAt(tab, itBlock*sb.BlockSize); err != nil {
			return fmt.Errorf("group %d: reading inode table: %w", g, err)
		}
		dirty := false
		for i := int64(0); i < used; i++ {
			if bitmap[i/8]&(1<<(i%8)) == 0 {
				continue
			}
			ino := uint32(g*sb.InodesPerGrp + i + 1)
			raw := tab[i*isz : (i+1)*isz]
			if sb.metaCsum && !checksumOK(seed, ino, raw) {
				return fmt.Errorf("inode %d: checksum does not match", ino)
			}
			a := getAttrs(raw)
			orig := a
			if err := fn(ino, &a); err != nil {
				return fmt.Errorf("inode %d: %w", ino, err)
			}
			if a == orig {
				continue
			}
			putAttrs(raw, &a)
			if sb.metaCsum {
				setInodeChecksum(raw, inodeChecksum(seed, ino, raw))
			}
			dirty = true
		}
		if dirty {
			if _, err := f.WriteAt(tab, itBlock*sb.BlockSize); err != nil {
				return fmt.Errorf("group %d: writing inode table: %w", g, err)
			}
		}
	}
	return nil
}

func extraIsize(raw []byte) int {
	if len(raw) <= goodOldInodeSize {
		return 0
	}
	return int(le.Uint16(raw[inodeExtraIsize:]))
}

// fits reports whether the inode field at offset off with size n is there.
func fits(raw []byte, off, n int) bool {
	return off+n <= goodOldInodeSize || off+n <= goodOldInodeSize+extraIsize(raw) && off+n <= len(raw)
}

func storedInodeChecksum(raw []byte) uint32 {
	c := uint32(le.Uint16(raw[inodeChecksumLo:]))
	if fits(raw, inodeChecksumHi, 2) {
		c |= uint32(le.Uint16(raw[inodeChecksumHi:])) << 16
	}
	return c
}

// checksumOK compares the stored checksum, 16 bits of it in an inode with
// no room for the high half.
func checksumOK(seed, ino uint32, raw []byte) bool {
	c := inodeChecksum(seed, ino, raw)
	if !fits(raw, inodeChecksumHi, 2) {
		c &= 0xFFFF
	}
	return c == storedInodeChecksum(raw)
}

func setInodeChecksum(raw []byte, c uint32) {
	le.PutUint16(raw[inodeChecksumLo:], uint16(c))
	if fits(raw, inodeChecksumHi, 2) {
		le.PutUint16(raw[inodeChecksumHi:], uint16(c>>16))
	}
}

// inodeChecksum is ext4_inode_csum: the seed, the inode number and
// generation, then the inode with its checksum fields read as zero.
func inodeChecksum(seed, ino uint32, raw []byte) uint32 {
	var n [4]byte
	le.PutUint32(n[:], ino)
	c := crc32c(seed, n[:])
	c = crc32c(c, raw[inodeGeneration:inodeGeneration+4])
	var zero [2]byte
	c = crc32c(c, raw[:inodeChecksumLo])
	c = crc32c(c, zero[:])
	c = crc32c(c, raw[inodeChecksumLo+2:goodOldInodeSize])
	if len(raw) > goodOldInodeSize {
		if fits(raw, inodeChecksumHi, 2) {
			c = crc32c(c, raw[goodOldInodeSize:inodeChecksumHi])
			c = crc32c(c, zero[:])
			c = crc32c(c, raw[inodeChecksumHi+2:])
		} else {
			c = crc32c(c, raw[goodOldInodeSize:])
		}
	}
	return c
}

func getTime(raw []byte, off, extraOff int) Time {
	t := Time{Sec: int64(int32(le.Uint32(raw[off:])))}
	if extraOff >= 0 && fits(raw, extraOff, 4) {
		x := le.Uint32(raw[extraOff:])
		t.Sec += int64(x&3) << 32
		t.Nsec = x >> 2
	}
	return t
}

func putTime(raw []byte, off, extraOff int, t Time) {
	le.PutUint32(raw[off:], uint32(t.Sec))
	if extraOff >= 0 && fits(raw, extraOff, 4) {
		epoch := uint32((t.Sec-int64(int32(t.Sec)))>>32) & 3
		le.PutUint32(raw[extraOff:], epoch|t.Nsec<<2)
	}
}

func getAttrs(raw []byte) Attrs {
	a := Attrs{
		Mode:  le.Uint16(raw[0:]),
		UID:   uint32(le.Uint16(raw[2:])) | uint32(le.Uint16(raw[inodeUIDHigh:]))<<16,
		GID:   uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[inodeGIDHigh:]))<<16,
		Atime: getTime(raw, inodeAtime, inodeAtimeExtra),
		Ctime: getTime(raw, inodeCtime, inodeCtimeExtra),
		Mtime: getTime(raw, inodeMtime, inodeMtimeExtra),
		Links: le.Uint16(raw[inodeLinksCount:]),
	}
	if fits(raw, inodeCrtime, 4) {
		a.Crtime = getTime(raw, inodeCrtime, inodeCrtimeExtra)
	}
	return a
}

func putAttrs(raw []byte, a *Attrs) {
	le.PutUint16(raw[0:], a.Mode)
	le.PutUint16(raw[2:], uint16(a.UID))
	le.PutUint16(raw[inodeUIDHigh:], uint16(a.UID>>16))
	le.PutUint16(raw[0x18:], uint16(a.GID))
	le.PutUint16(raw[inodeGIDHigh:], uint16(a.GID>>16))
	putTime(raw, inodeAtime, inodeAtimeExtra, a.Atime)
	putTime(raw, inodeCtime, inodeCtimeExtra, a.Ctime)
	putTime(raw, inodeMtime, inodeMtimeExtra, a.Mtime)
	if fits(raw, inodeCrtime, 4) {
		putTime(raw, inodeCrtime, inodeCrtimeExtra, a.Crtime)
	}
}
