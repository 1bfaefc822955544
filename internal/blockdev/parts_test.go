package blockdev

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf16"
)

// gptDisk builds the first 34 sectors of a GPT disk with two partitions.
func gptDisk() []byte {
	b := make([]byte, 34*sectorSize)
	copy(b[sectorSize:], "EFI PART")
	h := b[sectorSize:]
	binary.LittleEndian.PutUint64(h[72:], 2)   // entries start at LBA 2
	binary.LittleEndian.PutUint32(h[80:], 128) // entries
	binary.LittleEndian.PutUint32(h[84:], 128) // entry size
	entry := func(i int, guid []byte, name string) {
		e := b[2*sectorSize+128*i:]
		copy(e[0:16], []byte{0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4}) // Linux data
		copy(e[16:32], guid)
		for j, u := range utf16.Encode([]rune(name)) {
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	entry(0, []byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00}, "EFI")
	entry(2, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, "ginit-root")
	return b
}

func TestParseTable(t *testing.T) {
	got, err := ParseTable(gptDisk())
	want := []Partition{
		{Number: 1, UUID: "44332211-6655-8877-99aa-bbccddeeff00", Label: "EFI"},
		{Number: 3, UUID: "04030201-0605-0807-090a-0b0c0d0e0f10", Label: "ginit-root"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTable(GPT) = %+v, %v; want %+v", got, err, want)
	}
	mbr := make([]byte, sectorSize)
	binary.LittleEndian.PutUint32(mbr[440:], 0xdeadbeef)
	mbr[446+16+4] = 0x83 // partition 2: Linux
	mbr[510], mbr[511] = 0x55, 0xAA
	got, err = ParseTable(mbr)
	if want := []Partition{{Number: 2, UUID: "deadbeef-02"}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTable(MBR) = %+v, %v; want %+v", got, err, want)
	}
	if _, err := ParseTable(make([]byte, sectorSize)); err == nil {
		t.Errorf("ParseTable(zeros) succeeded; want no partition table")
	}
}

func FuzzParseTable(f *testing.F) {
	f.Add(gptDisk())
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseTable(b) })
}

// root=PARTUUID= and PARTLABEL= find the partition device through sysfs.
func TestFindPartition(t *testing.T) {
	dir := t.TempDir()
	sysBlock, devDir := filepath.Join(dir, "class/block"), filepath.Join(dir, "dev")
	part := filepath.Join(dir, "devices/virtio1/block/vda/vda3")
	for _, d := range []string{sysBlock, devDir, part} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(part, "partition"), []byte("3\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(part, filepath.Join(sysBlock, "vda3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(part), filepath.Join(sysBlock, "vda")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devDir, "vda"), gptDisk(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devDir, "vda3"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"PARTUUID=04030201-0605-0807-090A-0B0C0D0E0F10", "PARTLABEL=ginit-root"} {
		spec, err := ParseSpec(v)
		if err != nil {
			t.Fatal(err)
		}
		dev, _, err := Find(sysBlock, devDir, spec)
		if want := filepath.Join(devDir, "vda3"); err != nil || dev != want {
			t.Errorf("Find(%s) = %q, %v; want %q", v, dev, err, want)
		}
	}
	spec, _ := ParseSpec("PARTLABEL=EFI") // partition 1 is not known to the kernel here
	if _, _, err := Find(sysBlock, devDir, spec); !os.IsNotExist(err) {
		t.Errorf("Find(PARTLABEL=EFI) error = %v; want not-exist", err)
	}
}
