package csum

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/e2fstest"
)

func TestCRC32c(t *testing.T) {
	ascending := make([]byte, 32)
	for i := range ascending {
		ascending[i] = byte(i)
	}
	// The check value and RFC 3720's (iSCSI) vectors, which take the
	// usual ^0 in and out around the kernel's crc32c_le.
	for _, tc := range []struct {
		name string
		in   []byte
		want uint32
	}{
		{"123456789", []byte("123456789"), 0xE3069283},
		{"32 zeros", make([]byte, 32), 0x8A9136AA},
		{"32 0xff", bytes.Repeat([]byte{0xFF}, 32), 0x62A8AB43},
		{"0 to 31", ascending, 0x46DD794E},
	} {
		if got := ^CRC32c(^uint32(0), tc.in); got != tc.want {
			t.Errorf("^CRC32c(^0, %s) = %#x; want %#x", tc.name, got, tc.want)
		}
	}
	// A chain is the same taken in pieces.
	if a, b := CRC32c(1, []byte("123456789")), CRC32c(CRC32c(1, []byte("1234")), []byte("56789")); a != b {
		t.Errorf("CRC32c in one piece = %#x, in two = %#x; want equal", a, b)
	}
}

// The checksums computed here are the ones mke2fs wrote: the superblock's,
// group 0's descriptor's, and the root inode's.
func TestMatchesMke2fs(t *testing.T) {
	img, _ := e2fstest.Mke2fs(t, 64<<20, "-q")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	raw := b[ext4fs.SuperOffset : ext4fs.SuperOffset+ext4fs.SuperSize]
	if got, want := Super(raw), le.Uint32(raw[ext4fs.SbChecksum:]); got != want {
		t.Errorf("Super(mke2fs's superblock) = %#x; mke2fs wrote %#x", got, want)
	}
	sb, err := ext4fs.ParseSuperblock(raw)
	if err != nil {
		t.Fatalf("ParseSuperblock(mke2fs's) = %v; want nil", err)
	}
	seed := SeedOf(&sb)
	d := b[ext4fs.BlockSize : ext4fs.BlockSize+ext4fs.DescSize]
	if got, want := GroupDesc(seed, 0, d), le.Uint16(d[ext4fs.GdChecksum:]); got != want {
		t.Errorf("GroupDesc(group 0) = %#x; mke2fs wrote %#x", got, want)
	}
	itable := int64(le.Uint32(d[ext4fs.GdInodeTableLo:])) | int64(le.Uint32(d[ext4fs.GdInodeTableHi:]))<<32
	root := b[itable*ext4fs.BlockSize+(ext4fs.RootIno-1)*ext4fs.InodeSize:][:ext4fs.InodeSize]
	if got, want := Inode(seed, ext4fs.RootIno, root), StoredInode(root); got != want {
		t.Errorf("Inode(root) = %#x; mke2fs wrote %#x", got, want)
	}
	old := slices.Clone(root)
	SetInode(seed, ext4fs.RootIno, root)
	if !bytes.Equal(root, old) {
		t.Errorf("SetInode(root) changed mke2fs's inode; want it as it was")
	}
	// A 128-byte inode keeps 16 bits.
	small := slices.Clone(root[:ext4fs.GoodOldInodeSize])
	if c := Inode(seed, ext4fs.RootIno, small); c > 0xFFFF {
		t.Errorf("Inode(128-byte inode) = %#x; want 16 bits", c)
	}
}
