package ext4fs

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/ext4fs/e2fstest"
)

func TestHasSuper(t *testing.T) {
	var got []uint64
	for g := range uint64(1000) {
		if HasSuper(g) {
			got = append(got, g)
		}
	}
	want := []uint64{0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243, 343, 625, 729}
	if !slices.Equal(got, want) {
		t.Errorf("groups below 1000 with HasSuper = %v; want %v", got, want)
	}
	for _, g := range []uint64{3486784401, 1220703125, 1977326743} { // 3^20, 5^13, 7^11
		if !HasSuper(g) {
			t.Errorf("HasSuper(%d) = false; want true", g)
		}
	}
	for _, g := range []uint64{15, 45, 3486784400, 1 << 32} {
		if HasSuper(g) {
			t.Errorf("HasSuper(%d) = true; want false", g)
		}
	}
}

func TestJournalBlocksTable(t *testing.T) {
	for _, tc := range []struct {
		blocks uint64
		want   uint32
	}{
		{0, 0}, {2047, 0}, {2048, 1024}, {32767, 1024}, {32768, 4096}, {262143, 4096}, {262144, 8192},
		{524288, 16384}, {4194303, 16384}, {4194304, 32768}, {8388608, 65536},
		{16777216, 131072}, {33554431, 131072}, {33554432, 262144}, {1 << 40, 262144},
	} {
		if got := JournalBlocks(tc.blocks); got != tc.want {
			t.Errorf("JournalBlocks(%d) = %d; want %d", tc.blocks, got, tc.want)
		}
	}
}

// JournalBlocks is what the installed mke2fs picks, on both sides of
// each step of its table. The images are sparse and lazily initialised:
// a few MiB each, even at 200 GiB.
func TestJournalBlocksMatchesMke2fs(t *testing.T) {
	for _, size := range []int64{
		64 << 20, 128<<20 - 4096, 128 << 20, 1<<30 - 4096, 1 << 30, 2 << 30, 16<<30 - 4096, 16 << 30,
		32 << 30, 64 << 30, 128<<30 - 4096, 128 << 30, 200 << 30,
	} {
		img, _ := e2fstest.Mke2fs(t, size, "-q")
		f := e2fstest.Dumpe2fs(t, img)
		blocks, err1 := strconv.ParseUint(f["Block count"], 10, 64)
		journal, err2 := strconv.ParseUint(f["Total journal blocks"], 10, 32)
		if err1 != nil || err2 != nil {
			t.Fatalf("dumpe2fs -h of a %d-byte ext4: Block count %q, Total journal blocks %q; want numbers", size, f["Block count"], f["Total journal blocks"])
		}
		if got := JournalBlocks(blocks); uint64(got) != journal {
			t.Errorf("JournalBlocks(%d) = %d; mke2fs made %d (%d-byte image)", blocks, got, journal, size)
		}
		os.Remove(img)
	}
}

// HasSuper picks the groups whose backups mke2fs lists.
func TestHasSuperMatchesMke2fs(t *testing.T) {
	const groups = 1000
	_, out := e2fstest.Mke2fs(t, groups*BlocksPerGroup*BlockSize, "-n")
	_, list, ok := strings.Cut(out, "Superblock backups stored on blocks:")
	if !ok {
		t.Fatalf("mke2fs -n output has no superblock backups:\n%s", out)
	}
	list, _, _ = strings.Cut(strings.TrimSpace(list), "\n\n")
	var got []uint64
	for _, w := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		b, err := strconv.ParseUint(w, 10, 64)
		if err != nil {
			t.Fatalf("mke2fs -n backup block %q: %v", w, err)
		}
		got = append(got, b/BlocksPerGroup)
	}
	var want []uint64
	for g := uint64(1); g < groups; g++ {
		if HasSuper(g) {
			want = append(want, g)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("mke2fs -n backup groups = %v; HasSuper gives %v", got, want)
	}
}

// ParseSuperblock reads what mke2fs wrote.
func TestParseSuperblockMatchesMke2fs(t *testing.T) {
	const uuid = "0b0e5b2c-1f57-4d5e-9a7e-3c2b7f1d8e11"
	img, _ := e2fstest.Mke2fs(t, 64<<20, "-q", "-L", "ginit-root", "-U", uuid)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	raw := b[SuperOffset : SuperOffset+SuperSize]
	s, err := ParseSuperblock(raw)
	if err != nil {
		t.Fatalf("ParseSuperblock(mke2fs's) = %v; want nil", err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Type", s.Type(), "ext4"},
		{"Label", s.Label, "ginit-root"},
		{"UUID", formatUUID(s.UUID), uuid},
		{"BlockSize", s.BlockSize, int64(BlockSize)},
		{"Blocks", s.Blocks, int64(16384)},
		{"BlocksPerGroup", s.BlocksPerGroup, int64(BlocksPerGroup)},
		{"InodeSize", s.InodeSize, InodeSize},
		{"DescSize", s.DescSize, int64(DescSize)},
		{"FirstIno", s.FirstIno, uint32(GoodOldFirstIno)},
		{"MetadataCsum", s.MetadataCsum(), true},
	} {
		if c.got != c.want {
			t.Errorf("ParseSuperblock(mke2fs's).%s = %v; want %v", c.name, c.got, c.want)
		}
	}
}

func formatUUID(u [16]byte) string {
	const hex = "0123456789abcdef"
	var s strings.Builder
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s.WriteByte('-')
		}
		s.WriteByte(hex[c>>4])
		s.WriteByte(hex[c&15])
	}
	return s.String()
}

func TestParseSuperblockTypes(t *testing.T) {
	for _, tc := range []struct {
		compat, incompat uint32
		want             string
	}{
		{0, 0, "ext2"},
		{CompatHasJournal, IncompatFiletype, "ext3"},
		{CompatHasJournal, IncompatExtents, "ext4"},
		{0, IncompatFlexBG, "ext4"},
		{0, Incompat64bit, "ext4"},
	} {
		b := make([]byte, SuperSize)
		LE.PutUint16(b[SbMagic:], Magic)
		LE.PutUint32(b[SbFeatureCompat:], tc.compat)
		LE.PutUint32(b[SbFeatureIncompat:], tc.incompat)
		copy(b[SbVolumeName:], "sixteen-bytes-ab") // no NUL: all 16 are the label
		s, err := ParseSuperblock(b)
		if err != nil || s.Type() != tc.want || s.Label != "sixteen-bytes-ab" {
			t.Errorf("ParseSuperblock(compat %#x, incompat %#x) = %q, label %q, %v; want %q, sixteen-bytes-ab",
				tc.compat, tc.incompat, s.Type(), s.Label, err, tc.want)
		}
	}
	if _, err := ParseSuperblock(make([]byte, SuperSize)); !errors.Is(err, ErrNoMagic) {
		t.Errorf("ParseSuperblock(zeros) = %v; want %v", err, ErrNoMagic)
	}
	if _, err := ParseSuperblock(make([]byte, 100)); err == nil {
		t.Errorf("ParseSuperblock(100 bytes) = nil; want an error")
	}
	b := make([]byte, SuperSize)
	LE.PutUint16(b[SbMagic:], Magic)
	LE.PutUint32(b[SbLogBlockSize:], 40)
	if s, err := ParseSuperblock(b); err != nil || s.BlockSize != 0 {
		t.Errorf("ParseSuperblock(log block size 40).BlockSize = %d, %v; want 0", s.BlockSize, err)
	}
}

func TestTimes(t *testing.T) {
	for _, tc := range []struct {
		sec  int64
		nsec uint32
	}{{0, 0}, {-1, 5}, {1 << 31, 999999999}, {2211753296, 789}, {-(1 << 31), 1}, {3<<32 + 5, 0}} {
		lo := uint32(tc.sec)
		sec, nsec := DecodeTime(lo, ExtraTime(tc.sec, tc.nsec))
		if sec != tc.sec || nsec != tc.nsec {
			t.Errorf("DecodeTime(ExtraTime(%d, %d)) = %d, %d; want them back", tc.sec, tc.nsec, sec, nsec)
		}
	}
	if sec, _ := DecodeTime(0xFFFFFFFF, 0); sec != -1 {
		t.Errorf("DecodeTime(0xffffffff, 0) = %d; want -1 (signed seconds without the extra field)", sec)
	}
}

func TestInodeHasField(t *testing.T) {
	raw := make([]byte, InodeSize)
	LE.PutUint16(raw[InoExtraIsize:], 4)
	for _, tc := range []struct {
		off, n int
		want   bool
	}{
		{InoChecksumLo, 2, true}, {InoChecksumHi, 2, true}, {InoCtimeExtra, 4, false}, {InoCrtime, 4, false},
	} {
		if got := InodeHasField(raw, tc.off, tc.n); got != tc.want {
			t.Errorf("InodeHasField(extra_isize 4, %#x, %d) = %v; want %v", tc.off, tc.n, got, tc.want)
		}
	}
	if InodeHasField(raw[:GoodOldInodeSize], InoChecksumHi, 2) {
		t.Errorf("InodeHasField(128-byte inode, i_checksum_hi) = true; want false")
	}
}
