package osfind

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// fakeSys makes a /sys/class/block: each device a directory with size (and
// partition), partitions inside their disk's directory, as sysfs links them.
func fakeSys(t *testing.T, disks map[string][]int, sizes map[string]string) string {
	t.Helper()
	root := t.TempDir()
	devices := filepath.Join(root, "devices")
	class := filepath.Join(root, "class")
	if err := os.MkdirAll(class, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(dir, name, value string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	size := func(name string) string {
		if s, ok := sizes[name]; ok {
			return s
		}
		return "2048"
	}
	for disk, parts := range disks {
		d := filepath.Join(devices, disk)
		write(d, "size", size(disk))
		if err := os.Symlink(d, filepath.Join(class, disk)); err != nil {
			t.Fatal(err)
		}
		for _, n := range parts {
			name := disk + itoa(n)
			if len(disk) > 0 && disk[len(disk)-1] >= '0' && disk[len(disk)-1] <= '9' {
				name = disk + "p" + itoa(n)
			}
			p := filepath.Join(d, name)
			write(p, "size", size(name))
			write(p, "partition", itoa(n))
			if err := os.Symlink(p, filepath.Join(class, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return class
}

func itoa(n int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

func TestDevices(t *testing.T) {
	sys := fakeSys(t, map[string][]int{
		"vdb":     {1, 2, 10},
		"vda":     nil,
		"nvme0n1": {2, 1},
		"loop0":   nil,
		"ram0":    nil,
		"sr0":     nil, // an empty CD drive
		"sr1":     nil,
		"sdc":     {1},
	}, map[string]string{"sr0": "0", "sdc1": "0"})
	got, err := Devices(sys, "/dev")
	if err != nil {
		t.Fatal(err)
	}
	want := []Device{
		{"nvme0n1p1", "/dev/nvme0n1p1", 0, 1},
		{"nvme0n1p2", "/dev/nvme0n1p2", 0, 2},
		// sdc's only partition is empty: nothing of sdc to mount.
		{"sr1", "/dev/sr1", 2, 0},
		{"vda", "/dev/vda", 3, 0},
		{"vdb1", "/dev/vdb1", 4, 1},
		{"vdb2", "/dev/vdb2", 4, 2},
		{"vdb10", "/dev/vdb10", 4, 10},
	}
	if len(got) != len(want) {
		t.Fatalf("Devices = %+v; want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("device %d = %+v; want %+v", i, got[i], want[i])
		}
	}
	if _, err := Devices(filepath.Join(t.TempDir(), "missing"), "/dev"); err == nil {
		t.Errorf("Devices(missing dir) = nil error; want one")
	}
}

func TestIdentify(t *testing.T) {
	ext := make([]byte, probeSize)
	binary.LittleEndian.PutUint16(ext[1024+0x38:], 0xEF53)
	binary.LittleEndian.PutUint32(ext[1024+0x60:], 0x40)
	copy(ext[1024+0x68:], []byte{0x3f, 0x1b, 0x9a, 0x4e, 0x27, 0xc1, 0x4b, 0xd8, 0x9d, 0x5e, 0x0c, 0x2a, 0x4f, 0x7e, 0x6a, 0x11})
	copy(ext[1024+0x78:], "rootfs")

	fat32 := make([]byte, probeSize)
	fat32[0], fat32[510], fat32[511] = 0xEB, 0x55, 0xAA
	copy(fat32[0x52:], "FAT32   ")
	binary.LittleEndian.PutUint32(fat32[0x43:], 0xABCD1234)
	copy(fat32[0x47:], "EFI        ")

	fat16 := make([]byte, probeSize)
	fat16[0], fat16[510], fat16[511] = 0xEB, 0x55, 0xAA
	copy(fat16[0x36:], "FAT16   ")
	binary.LittleEndian.PutUint32(fat16[0x27:], 0x00C0FFEE)
	copy(fat16[0x2B:], "NO NAME    ")

	iso := make([]byte, probeSize)
	iso[0x8000] = 1
	copy(iso[0x8001:], "CD001")
	copy(iso[0x8028:], "Debian 12.5.0 amd64 n           ")

	for _, tc := range []struct {
		name             string
		b                []byte
		typ, uuid, label string
		ok               bool
	}{
		{"ext4", ext, "ext4", "3f1b9a4e-27c1-4bd8-9d5e-0c2a4f7e6a11", "rootfs", true},
		{"fat32", fat32, "vfat", "ABCD-1234", "EFI", true},
		{"fat16", fat16, "vfat", "00C0-FFEE", "", true},
		{"iso9660", iso, "iso9660", "", "Debian 12.5.0 amd64 n", true},
		{"zeros", make([]byte, probeSize), "", "", "", false},
		{"short", []byte{1, 2, 3}, "", "", "", false},
	} {
		typ, uuid, label, ok := identify(tc.b)
		if typ != tc.typ || uuid != tc.uuid || label != tc.label || ok != tc.ok {
			t.Errorf("identify(%s) = %q, %q, %q, %v; want %q, %q, %q, %v", tc.name, typ, uuid, label, ok, tc.typ, tc.uuid, tc.label, tc.ok)
		}
	}
}

func TestKernelFilesystems(t *testing.T) {
	p := filepath.Join(t.TempDir(), "filesystems")
	os.WriteFile(p, []byte("nodev\tsysfs\nnodev\ttmpfs\n\text3\n\text2\n\text4\n\tvfat\n\txfs\n\tbtrfs\nnodev\tovl\n"), 0o644)
	got := kernelFilesystems(p)
	if len(got) != 2 || got[0] != "xfs" || got[1] != "btrfs" {
		t.Errorf("kernelFilesystems = %q; want [xfs btrfs]", got)
	}
}

func TestJoinCmdline(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"root=/dev/sda1 ro", "", "root=/dev/sda1 ro"},
		{"root=/dev/sda1 ro ", " console=ttyS0", "root=/dev/sda1 ro console=ttyS0"},
		{"", "console=ttyS0", "console=ttyS0"},
	} {
		if got := JoinCmdline(tc.a, tc.b); got != tc.want {
			t.Errorf("JoinCmdline(%q, %q) = %q; want %q", tc.a, tc.b, got, tc.want)
		}
	}
}
