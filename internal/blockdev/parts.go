package blockdev

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf16"
)

// Partition is what a partition table says about one partition.
type Partition struct {
	Number int    // 1-based, as the kernel numbers it
	UUID   string // GPT unique GUID, or MBR "SSSSSSSS-NN"; lower case
	Label  string // GPT partition name; empty for MBR
}

const sectorSize = 512

// ParseTable reads a GPT (from LBA 1) or else an MBR partition table from
// the first sectors of a disk, given as b (at least 34 sectors for GPT).
func ParseTable(b []byte) ([]Partition, error) {
	if len(b) >= 2*sectorSize && string(b[sectorSize:sectorSize+8]) == "EFI PART" {
		return parseGPT(b)
	}
	return parseMBR(b)
}

func parseGPT(b []byte) ([]Partition, error) {
	h := b[sectorSize:]
	entriesLBA := binary.LittleEndian.Uint64(h[72:])
	count := binary.LittleEndian.Uint32(h[80:])
	size := binary.LittleEndian.Uint32(h[84:])
	if size < 128 || size > 4096 || count > 1024 {
		return nil, fmt.Errorf("GPT header: %d entries of %d bytes", count, size)
	}
	start := entriesLBA * sectorSize
	var parts []Partition
	for i := uint32(0); i < count; i++ {
		off := start + uint64(i)*uint64(size)
		if off+uint64(size) > uint64(len(b)) {
			break
		}
		e := b[off : off+uint64(size)]
		if bytes.Equal(e[0:16], make([]byte, 16)) {
			continue // unused entry
		}
		name := make([]uint16, 36)
		for j := range name {
			name[j] = binary.LittleEndian.Uint16(e[56+2*j:])
		}
		label := string(utf16.Decode(name))
		if k := strings.IndexByte(label, 0); k >= 0 {
			label = label[:k]
		}
		parts = append(parts, Partition{Number: int(i) + 1, UUID: guid(e[16:32]), Label: label})
	}
	return parts, nil
}

// guid formats a GPT GUID, whose first three fields are little-endian.
func guid(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%s-%s",
		binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]), binary.LittleEndian.Uint16(b[6:]),
		hex.EncodeToString(b[8:10]), hex.EncodeToString(b[10:16]))
}

var errNoTable = errors.New("no partition table")

func parseMBR(b []byte) ([]Partition, error) {
	if len(b) < sectorSize || b[510] != 0x55 || b[511] != 0xAA {
		return nil, errNoTable
	}
	sig := binary.LittleEndian.Uint32(b[440:])
	var parts []Partition
	for i := 0; i < 4; i++ {
		e := b[446+16*i:]
		if e[4] == 0 { // type 0: empty
			continue
		}
		parts = append(parts, Partition{Number: i + 1, UUID: fmt.Sprintf("%08x-%02x", sig, i+1)})
	}
	return parts, nil
}

// findPartition looks through the partitions the kernel knows (entries of
// sysBlock with a "partition" file) for one whose table entry matches.
func findPartition(sysBlock, devDir string, spec Spec) (string, error) {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return "", fmt.Errorf("list block devices: %w", err)
	}
	tables := map[string][]Partition{}
	for _, e := range entries {
		numb, err := os.ReadFile(filepath.Join(sysBlock, e.Name(), "partition"))
		if err != nil {
			continue
		}
		num, err := strconv.Atoi(strings.TrimSpace(string(numb)))
		if err != nil {
			continue
		}
		// The parent disk is the directory above the partition's.
		real, err := filepath.EvalSymlinks(filepath.Join(sysBlock, e.Name()))
		if err != nil {
			continue
		}
		disk := filepath.Base(filepath.Dir(real))
		parts, ok := tables[disk]
		if !ok {
			parts, _ = readTable(filepath.Join(devDir, disk))
			tables[disk] = parts
		}
		for _, p := range parts {
			if p.Number != num {
				continue
			}
			if (spec.PartUUID != "" && p.UUID == spec.PartUUID) || (spec.PartLabel != "" && p.Label == spec.PartLabel) {
				return filepath.Join(devDir, e.Name()), nil
			}
		}
	}
	return "", os.ErrNotExist
}

func readTable(dev string) ([]Partition, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// 34 sectors hold the protective MBR, the GPT header and 128 entries.
	b := make([]byte, 34*sectorSize)
	n, _ := f.ReadAt(b, 0)
	return ParseTable(b[:n])
}
