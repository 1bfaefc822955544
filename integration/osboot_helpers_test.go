package integration

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

// stage2Initrd builds integration/testdata/stage2 as the /init of a small
// initramfs (with /dev/console, which the kernel opens before /init runs)
// and returns the cpio archive.
func stage2Initrd(t *testing.T, a Artifacts) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./integration/testdata/stage2")
	cmd.Dir = a.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build stage2: %v\n%s", err, out)
	}
	init, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(init), 0o755),
	}
	if err := cpio.WriteRecords(w, recs); err != nil {
		t.Fatal(err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// kernelRelease reads the release (6.1.0-56-cloud-amd64) from a bzImage's
// setup header, as file(1) does.
func kernelRelease(t *testing.T, kernel string) string {
	t.Helper()
	f, err := os.Open(kernel)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := f.ReadAt(hdr, 0); err != nil || string(hdr[0x202:0x206]) != "HdrS" {
		t.Fatalf("%s: not a bzImage (%v)", kernel, err)
	}
	ver := make([]byte, 256)
	if _, err := f.ReadAt(ver, int64(binary.LittleEndian.Uint16(hdr[0x20E:]))+0x200); err != nil {
		t.Fatalf("%s: read version: %v", kernel, err)
	}
	release, _, _ := strings.Cut(string(ver), " ")
	return release
}

// stageTree writes files (content, or "@path" to copy a file) under a new
// directory and returns it.
func stageTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := []byte(content)
		if src, ok := strings.CutPrefix(content, "@"); ok {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			data = b
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mkext4 makes an ext4 image of sizeMiB from the files of dir, with uuid
// and label, as mkfs.ext4 -d does without root.
func mkext4(t *testing.T, dir, uuid, label string, sizeMiB int) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), label+".ext4")
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-U", uuid, "-L", label, "-d", dir, img, strconv.Itoa(sizeMiB)+"M").CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4 -d %s: %v\n%s", dir, err, out)
	}
	return img
}

// mbrDisk makes a disk with an MBR partition table holding the images
// parts, in order (partitions 1, 2...), each Linux (0x83), 1 MiB aligned.
func mbrDisk(t *testing.T, parts ...string) string {
	t.Helper()
	const sector, align = 512, 1 << 20
	if len(parts) > 4 {
		t.Fatalf("mbrDisk: %d partitions; an MBR holds 4", len(parts))
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mbr := make([]byte, sector)
	off := int64(align)
	for i, p := range parts {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		size := (int64(len(data)) + align - 1) / align * align
		e := mbr[446+16*i:]
		e[4] = 0x83
		binary.LittleEndian.PutUint32(e[8:], uint32(off/sector))
		binary.LittleEndian.PutUint32(e[12:], uint32(size/sector))
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
		off += size
	}
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(off); err != nil {
		t.Fatal(err)
	}
	return disk
}
