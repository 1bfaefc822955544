package ext4img

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/csum"
)

var le = ext4fs.LE

// Superblock is what an image's superblock says (the layout is ext4fs's).
type Superblock = ext4fs.Superblock

// readSuperblock reads the primary superblock, its raw bytes and what they
// say, and checks its checksum.
func readSuperblock(f io.ReaderAt) ([]byte, *Superblock, error) {
	b := make([]byte, ext4fs.SuperSize)
	if _, err := f.ReadAt(b, ext4fs.SuperOffset); err != nil {
		return nil, nil, fmt.Errorf("reading superblock: %w", err)
	}
	sb, err := ext4fs.ParseSuperblock(b)
	if err != nil {
		return nil, nil, err
	}
	if sb.MetadataCsum() && csum.Super(b) != le.Uint32(b[ext4fs.SbChecksum:]) {
		return nil, nil, errors.New("superblock checksum does not match")
	}
	return b, &sb, nil
}

// ReadSuperblock reads the primary superblock of the image at path.
func ReadSuperblock(path string) (*Superblock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	_, sb, err := readSuperblock(f)
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
	b, sb, err := readSuperblock(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, o := range [][2]int{
		{ext4fs.SbWtime, ext4fs.SbWtimeHi}, {ext4fs.SbMkfsTime, ext4fs.SbMkfsTimeHi}, {ext4fs.SbLastcheck, ext4fs.SbLastcheckHi},
	} {
		le.PutUint32(b[o[0]:], uint32(t))
		b[o[1]] = byte(t >> 32)
	}
	if sb.MetadataCsum() {
		le.PutUint32(b[ext4fs.SbChecksum:], csum.Super(b))
	}
	if _, err := f.WriteAt(b, ext4fs.SuperOffset); err != nil {
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
	_, sb, err := readSuperblock(f)
	if err != nil {
		return err
	}
	if sb.InodeSize < ext4fs.GoodOldInodeSize || int64(sb.InodeSize) > sb.BlockSize || sb.BlocksPerGroup == 0 || sb.InodesPerGroup == 0 ||
		sb.DescSize < 32 || sb.DescSize > sb.BlockSize || sb.InodesPerGroup > sb.BlockSize*8 {
		return errors.New("unsupported superblock geometry")
	}
	groups := (sb.Blocks - sb.FirstDataBlock + sb.BlocksPerGroup - 1) / sb.BlocksPerGroup
	gdt := make([]byte, groups*sb.DescSize)
	if _, err := f.ReadAt(gdt, (sb.FirstDataBlock+1)*sb.BlockSize); err != nil {
		return fmt.Errorf("reading group descriptors: %w", err)
	}
	hasCsum := sb.MetadataCsum()
	seed := csum.SeedOf(sb)
	isz := int64(sb.InodeSize)
	bitmap := make([]byte, sb.BlockSize)
	table := make([]byte, sb.InodesPerGroup*isz)
	for g := int64(0); g < groups; g++ {
		d := gdt[g*sb.DescSize : (g+1)*sb.DescSize]
		if le.Uint16(d[ext4fs.GdFlags:])&ext4fs.BgInodeUninit != 0 {
			continue
		}
		bmBlock := int64(le.Uint32(d[ext4fs.GdInodeBitmapLo:]))
		itBlock := int64(le.Uint32(d[ext4fs.GdInodeTableLo:]))
		unused := int64(le.Uint16(d[ext4fs.GdItableUnusedLo:]))
		if sb.DescSize >= ext4fs.DescSize {
			bmBlock |= int64(le.Uint32(d[ext4fs.GdInodeBitmapHi:])) << 32
			itBlock |= int64(le.Uint32(d[ext4fs.GdInodeTableHi:])) << 32
			unused |= int64(le.Uint16(d[ext4fs.GdItableUnusedHi:])) << 16
		}
		used := sb.InodesPerGroup
		if hasCsum || sb.RoCompat&ext4fs.RoCompatGdtCsum != 0 {
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
			ino := uint32(g*sb.InodesPerGroup + i + 1)
			raw := tab[i*isz : (i+1)*isz]
			if hasCsum && csum.Inode(seed, ino, raw) != csum.StoredInode(raw) {
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
			if hasCsum {
				csum.SetInode(seed, ino, raw)
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

func getTime(raw []byte, off, extraOff int) Time {
	var extra uint32
	if ext4fs.InodeHasField(raw, extraOff, 4) {
		extra = le.Uint32(raw[extraOff:])
	}
	sec, nsec := ext4fs.DecodeTime(le.Uint32(raw[off:]), extra)
	return Time{Sec: sec, Nsec: nsec}
}

func putTime(raw []byte, off, extraOff int, t Time) {
	le.PutUint32(raw[off:], uint32(t.Sec))
	if ext4fs.InodeHasField(raw, extraOff, 4) {
		le.PutUint32(raw[extraOff:], ext4fs.ExtraTime(t.Sec, t.Nsec))
	}
}

func getAttrs(raw []byte) Attrs {
	a := Attrs{
		Mode:  le.Uint16(raw[ext4fs.InoMode:]),
		UID:   uint32(le.Uint16(raw[ext4fs.InoUIDLo:])) | uint32(le.Uint16(raw[ext4fs.InoUIDHi:]))<<16,
		GID:   uint32(le.Uint16(raw[ext4fs.InoGIDLo:])) | uint32(le.Uint16(raw[ext4fs.InoGIDHi:]))<<16,
		Atime: getTime(raw, ext4fs.InoAtime, ext4fs.InoAtimeExtra),
		Ctime: getTime(raw, ext4fs.InoCtime, ext4fs.InoCtimeExtra),
		Mtime: getTime(raw, ext4fs.InoMtime, ext4fs.InoMtimeExtra),
		Links: le.Uint16(raw[ext4fs.InoLinksCount:]),
	}
	if ext4fs.InodeHasField(raw, ext4fs.InoCrtime, 4) {
		a.Crtime = getTime(raw, ext4fs.InoCrtime, ext4fs.InoCrtimeExtra)
	}
	return a
}

func putAttrs(raw []byte, a *Attrs) {
	le.PutUint16(raw[ext4fs.InoMode:], a.Mode)
	le.PutUint16(raw[ext4fs.InoUIDLo:], uint16(a.UID))
	le.PutUint16(raw[ext4fs.InoUIDHi:], uint16(a.UID>>16))
	le.PutUint16(raw[ext4fs.InoGIDLo:], uint16(a.GID))
	le.PutUint16(raw[ext4fs.InoGIDHi:], uint16(a.GID>>16))
	putTime(raw, ext4fs.InoAtime, ext4fs.InoAtimeExtra, a.Atime)
	putTime(raw, ext4fs.InoCtime, ext4fs.InoCtimeExtra, a.Ctime)
	putTime(raw, ext4fs.InoMtime, ext4fs.InoMtimeExtra, a.Mtime)
	if ext4fs.InodeHasField(raw, ext4fs.InoCrtime, 4) {
		putTime(raw, ext4fs.InoCrtime, ext4fs.InoCrtimeExtra, a.Crtime)
	}
}
