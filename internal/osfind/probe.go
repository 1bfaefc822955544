package osfind

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/ginit-dev/ginit/internal/blockdev"
)

// probeSize is how much of a device identify reads: up to iso9660's
// primary volume descriptor.
const probeSize = 0x8800

// identify names the filesystem whose first bytes b are, with its UUID and
// label as GRUB's search sees them: ext2/3/4, FAT (an EFI system partition)
// and iso9660. ok is false for any other; those are mounted by trying the
// kernel's filesystems in turn.
func identify(b []byte) (typ, uuid, label string, ok bool) {
	if s, err := blockdev.ParseSuper(b); err == nil {
		return s.Type, s.UUID, s.Label, true
	}
	if uuid, label, ok := fatIdentity(b); ok {
		return "vfat", uuid, label, true
	}
	if len(b) >= 0x8048 && b[0x8000] == 1 && string(b[0x8001:0x8006]) == "CD001" {
		return "iso9660", "", strings.TrimRight(string(b[0x8028:0x8048]), " \x00"), true
	}
	return "", "", "", false
}

// fatIdentity reads a FAT boot sector's volume serial number (GRUB's UUID
// for it, XXXX-XXXX) and label.
func fatIdentity(b []byte) (uuid, label string, ok bool) {
	if len(b) < 512 || b[510] != 0x55 || b[511] != 0xAA || (b[0] != 0xEB && b[0] != 0xE9) {
		return "", "", false
	}
	var serialOff, labelOff int
	switch {
	case bytes.HasPrefix(b[0x52:], []byte("FAT32")):
		serialOff, labelOff = 0x43, 0x47
	case bytes.HasPrefix(b[0x36:], []byte("FAT")):
		serialOff, labelOff = 0x27, 0x2B
	default:
		return "", "", false
	}
	serial := binary.LittleEndian.Uint32(b[serialOff:])
	label = strings.TrimRight(string(b[labelOff:labelOff+11]), " \x00")
	if label == "NO NAME" {
		label = ""
	}
	return fmt.Sprintf("%04X-%04X", serial>>16, serial&0xffff), label, true
}
