package mkext4

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/blockdev"
	"github.com/ginit-dev/ginit/internal/ext4fs"
	"github.com/ginit-dev/ginit/internal/ext4fs/e2fstest"
	"github.com/ginit-dev/ginit/internal/ext4w"
)

var (
	testUUID = [16]byte{0x0b, 0x0e, 0x5b, 0x2c, 0x1f, 0x57, 0x4d, 0x5e, 0x9a, 0x7e, 0x3c, 0x2b, 0x7f, 0x1d, 0x8e, 0x11}
	// After 2038, with nanoseconds: the high time bits must survive.
	testTime = time.Date(2040, 2, 29, 12, 34, 56, 789, time.UTC)
)

const testUUIDString = "0b0e5b2c-1f57-4d5e-9a7e-3c2b7f1d8e11"

const wantFeatures = "has_journal ext_attr dir_index filetype meta_bg extent 64bit flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum"

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// formatTemp formats a new sparse file of size bytes.
func formatTemp(t *testing.T, size int64, o Options) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Size = size
	if err := Format(img, o); err != nil {
		t.Fatalf("Format(%s, %d bytes) = %v; want nil", img, size, err)
	}
	return img
}

func TestFormatChecksClean(t *testing.T) {
	const block = 4096
	for _, tc := range []struct {
		name       string
		size       int64
		wantBlocks int64
	}{
		{"8MiB", 8 << 20, 2048},
		{"200MiB", 200 << 20, 51200},
		{"1GiB", 1 << 30, 262144},
		{"5GiB", 5<<30 + 1000, 1310720}, // a partial block is left out
		// A last group too small for an inode table of its own is left
		// out, as mke2fs -b 4096 leaves it out.
		{"one group and 100 blocks", 128<<20 + 100*block, 32768},
		{"16 groups and 100 blocks", 2<<30 + 100*block, 524288},
		{"17 groups and 600 blocks", 2<<30 + 128<<20 + 600*block, 557656},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			img := formatTemp(t, tc.size, Options{Label: "ginit-root", UUID: testUUID, Time: testTime})
			t.Logf("Format(%d bytes) took %v", tc.size, time.Since(start))
			e2fstest.Fsck(t, img)
			f := e2fstest.Dumpe2fs(t, img)
			for key, want := range map[string]string{
				"Filesystem volume name": "ginit-root",
				"Filesystem UUID":        testUUIDString,
				"Filesystem features":    wantFeatures,
				"Filesystem state":       "clean",
				"Block count":            strconv.FormatInt(tc.wantBlocks, 10),
				"Block size":             "4096",
				"Inode size":             "256",
				"Flex block group size":  "16",
				"Checksum type":          "crc32c",
				"Default directory hash": "half_md4",
				"Filesystem created":     testTime.Format("Mon Jan _2 15:04:05 2006"),
			} {
				if got := f[key]; got != want {
					t.Errorf("dumpe2fs %q = %q; want %q", key, got, want)
				}
			}
			blocks, _ := strconv.ParseInt(f["Block count"], 10, 64)
			inodes, _ := strconv.ParseInt(f["Inode count"], 10, 64)
			if ratio := blocks * block / max(inodes, 1); ratio < 15000 || ratio > 16384 {
				t.Errorf("bytes per inode = %d (%d inodes); want about 16384", ratio, inodes)
			}
		})
	}
}

// Our own root= probe finds the label and UUID.
func TestProbe(t *testing.T) {
	img := formatTemp(t, 8<<20, Options{Label: "ginit-root", UUID: testUUID, Time: testTime})
	s, err := blockdev.Probe(img)
	want := blockdev.Super{Type: "ext4", UUID: testUUIDString, Label: "ginit-root"}
	if err != nil || s != want {
		t.Errorf("blockdev.Probe(formatted) = %+v, %v; want %+v", s, err, want)
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestReproducible(t *testing.T) {
	o := Options{Label: "same", UUID: testUUID, Time: testTime}
	a, b := fileSum(t, formatTemp(t, 64<<20, o)), fileSum(t, formatTemp(t, 64<<20, o))
	if a != b {
		t.Errorf("sha256 of two images with the same Options = %x, %x; want equal", a, b)
	}
	o.UUID[0]++
	if c := fileSum(t, formatTemp(t, 64<<20, o)); c == a {
		t.Errorf("sha256 with another UUID = %x; want a different image", c)
	}
}

// A random UUID and the current time are used when none are given.
func TestDefaults(t *testing.T) {
	before := time.Now().Add(-time.Second)
	img := formatTemp(t, 8<<20, Options{})
	e2fstest.Fsck(t, img)
	f := e2fstest.Dumpe2fs(t, img)
	if u := f["Filesystem UUID"]; u == "" || u == "00000000-0000-0000-0000-000000000000" || u[14] != '4' {
		t.Errorf("dumpe2fs UUID = %q; want a random version 4 UUID", u)
	}
	created, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", f["Filesystem created"], time.Local)
	if err != nil || created.Before(before.Truncate(time.Second)) {
		t.Errorf("dumpe2fs created = %q, %v; want about now", f["Filesystem created"], err)
	}
}

// Formatting over old data gives a clean file system; old signatures in
// the first MiB (here a btrfs superblock's place) are gone, although the
// inode tables there are not written; and what lies past Size is kept.
func TestFormatOverGarbage(t *testing.T) {
	const size = 64 << 20
	img := filepath.Join(t.TempDir(), "disk.img")
	garbage := make([]byte, size+1<<20)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(garbage)
	if err := os.WriteFile(img, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Format(img, Options{UUID: testUUID, Time: testTime, Size: size}); err != nil {
		t.Fatalf("Format(garbage) = %v; want nil", err)
	}
	e2fstest.Fsck(t, img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	const btrfsSuper = 64 << 10
	if !bytes.Equal(b[btrfsSuper:btrfsSuper+4096], make([]byte, 4096)) {
		t.Errorf("block at 64 KiB after Format = %x...; want zeros", b[btrfsSuper:btrfsSuper+16])
	}
	if !bytes.Equal(b[:1024], make([]byte, 1024)) {
		t.Errorf("boot sector after Format = %x...; want zeros", b[:16])
	}
	if !bytes.Equal(b[size:], garbage[size:]) {
		t.Errorf("bytes past Size changed by Format; want them kept")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.img")
	if err := os.WriteFile(small, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.img")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.img")
	for _, tc := range []struct {
		name    string
		path    string
		o       Options
		wantErr error  // nil: any error
		wantIn  string // in the message besides the path
	}{
		{"too small", small, Options{}, ErrTooSmall, "4194304"},
		{"too small a size", empty, Options{Size: MinSize - 1}, ErrTooSmall, strconv.Itoa(MinSize - 1)},
		{"label too long", empty, Options{Label: "seventeen-bytes-!", Size: MinSize}, nil, "seventeen-bytes-!"},
		{"missing", missing, Options{Size: MinSize}, fs.ErrNotExist, ""},
		{"empty file, no size", empty, Options{}, nil, "empty"},
		{"directory", dir, Options{Size: MinSize}, nil, "not a regular file"},
		{"negative size", empty, Options{Size: -1}, nil, "negative"},
		{"too large", empty, Options{Size: 17 << 40}, errTooLarge, "16 TiB"},
	} {
		err := Format(tc.path, tc.o)
		if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) ||
			!strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.wantIn) {
			t.Errorf("%s: Format(%s, %+v) = %v; want an error naming the path and %q, wrapping %v",
				tc.name, tc.path, tc.o, err, tc.wantIn, tc.wantErr)
		}
	}
	if fileExists(missing) {
		t.Errorf("Format(%s) created the file; want it left missing", missing)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("size of %s after failed Formats = %v, %v; want 0", empty, fi.Size(), err)
	}
}

// The largest file system lays out, and one block more is refused.
func TestLayoutLimits(t *testing.T) {
	empty := ext4w.NewTree(nil, ext4w.Options{})
	pl, err := empty.Plan(ext4w.Params{Size: maxBlocks * ext4fs.BlockSize})
	if err != nil {
		t.Fatalf("Plan(%d blocks) = %v; want nil", uint64(maxBlocks), err)
	}
	if pl.Inodes() > maxBlocks {
		t.Errorf("Plan(max): %d inodes; want within 32 bits", pl.Inodes())
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(img, nil, 0o644)
	if err := Format(img, Options{Size: (maxBlocks + 1) * ext4fs.BlockSize}); !errors.Is(err, errTooLarge) {
		t.Errorf("Format(%d blocks) = %v; want %v", uint64(maxBlocks)+1, err, errTooLarge)
	}
}
