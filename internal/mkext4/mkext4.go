// Package mkext4 writes an empty ext4 file system, as mkfs.ext4 would, on
// a file or a block device, in pure Go, so that a machine that carries no
// e2fsprogs can format a local disk and then mount it. The file system is
// the one oci2disk writes (package ext4w), with nothing in it but the root
// and lost+found, and 5% of the blocks kept for root, as mke2fs keeps them.
//
// The file system is mke2fs's default ext4: 4 KiB blocks, 256-byte inodes
// (one per 16 KiB), flex_bg, 64bit, metadata_csum, dir_index and a journal
// (without one, a crash would call for an fsck that such a machine lacks),
// with its descriptors laid out as meta_bg has them (see ext4w).
//
// Only metadata that holds something is written, a few MiB even on a large
// disk. Inode tables are initialised lazily, as mke2fs's lazy_itable_init
// does: groups with no inode in use are marked INODE_UNINIT, and the
// checksummed descriptors' unused-inode counts tell the kernel and e2fsck
// not to read the tables; the kernel zeroes them in the background after
// the first mount. Writing them here would cost 1/64 of the disk: minutes
// on a large disk under emulation. The journal, which is read after a
// crash, is zeroed, with fallocate where the device can do it cheaply, and
// so are both ends of the disk, where other formats leave signatures.
package mkext4

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4w"
)

// Options say what to write. The zero value is valid.
type Options struct {
	Label string    // volume label, at most 16 bytes
	UUID  [16]byte  // zero: random
	Size  int64     // bytes to use; 0: the whole file or block device
	Time  time.Time // stamps the superblock and the directories; zero: now
}

// MinSize is the smallest file system Format makes: room for the metadata,
// the smallest journal the kernel accepts (4 MiB) and some data.
const MinSize = ext4w.MinSize

// ErrTooSmall is returned, wrapped, for a device or size below MinSize.
var ErrTooSmall = errors.New("too small for an ext4 file system")

// maxBlocks keeps block numbers and the inode count within 32 bits.
const maxBlocks = math.MaxUint32

var errTooLarge = errors.New("larger than the 16 TiB this package formats; set Options.Size")

// Format writes an empty ext4 file system on the file or block device at
// path. A regular file shorter than Options.Size is extended (sparse).
// Bytes past the file system (past Size, or past the last whole block
// group) are not touched.
func Format(path string, o Options) error {
	if len(o.Label) > 16 {
		return fmt.Errorf("mkext4 %s: label %q is %d bytes; the most is 16", path, o.Label, len(o.Label))
	}
	if o.Size < 0 {
		return fmt.Errorf("mkext4 %s: negative size %d", path, o.Size)
	}
	if o.UUID == ([16]byte{}) {
		if _, err := rand.Read(o.UUID[:]); err != nil {
			return fmt.Errorf("mkext4 %s: random UUID: %w", path, err)
		}
		o.UUID[6] = o.UUID[6]&0x0f | 0x40 // version 4
		o.UUID[8] = o.UUID[8]&0x3f | 0x80 // RFC 4122 variant
	}
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	dev, err := openDevice(path, o.Size)
	if err != nil {
		return fmt.Errorf("mkext4 %s: %w", path, err)
	}
	defer dev.f.Close()
	if dev.size < MinSize {
		return fmt.Errorf("mkext4 %s: %d bytes: %w (the least is %d bytes)", path, dev.size, ErrTooSmall, MinSize)
	}
	if uint64(dev.size)/ext4fs.BlockSize > maxBlocks {
		return fmt.Errorf("mkext4 %s: %d bytes: %w", path, dev.size, errTooLarge)
	}
	empty := ext4w.NewTree(nil, ext4w.Options{})
	pl, err := empty.Plan(ext4w.Params{Size: dev.size, Label: o.Label, Time: o.Time.Unix(), HashSeed: hashSeed(o.UUID), ReservePercent: 5})
	if err != nil {
		return fmt.Errorf("mkext4 %s: %d bytes: %w", path, dev.size, err)
	}
	if err := dev.grow(); err != nil {
		return fmt.Errorf("mkext4 %s: %w", path, err)
	}
	if err := pl.WriteDevice(dev.f, ext4w.IDs{UUID: o.UUID}, dev.zero); err != nil {
		return fmt.Errorf("mkext4 %s: %w", path, err)
	}
	if err := dev.f.Sync(); err != nil {
		return fmt.Errorf("mkext4 %s: sync: %w", path, err)
	}
	dev.rereadPartitions()
	if err := dev.f.Close(); err != nil {
		return fmt.Errorf("mkext4 %s: close: %w", path, err)
	}
	return nil
}

// hashSeed derives the directory hash seed from the UUID, so that the same
// Options give the same bytes, and a random UUID gives a random seed.
func hashSeed(uuid [16]byte) [16]byte {
	sum := sha256.Sum256(append([]byte("ext4 dir hash seed "), uuid[:]...))
	var s [16]byte
	copy(s[:], sum[:])
	return s
}
