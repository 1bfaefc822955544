// Package blockdev finds the root device named by root= (a path, LABEL= or
// UUID=) among the machine's block devices, waiting for it to appear.
package blockdev

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ginit-dev/ginit/internal/ext4fs"
)

// Super is what a filesystem's superblock says about it.
type Super struct {
	Type  string // "ext4", "ext3" or "ext2"
	UUID  string // lower-case, dashed
	Label string
}

// ErrUnknownFS is returned for a device whose superblock ginit does not know.
var ErrUnknownFS = errors.New("no known filesystem")

// probeLen is what Probe reads: the boot sector and the superblock after it.
const probeLen = ext4fs.SuperOffset + ext4fs.SuperSize

// ParseSuper reads a filesystem's identity from the first 2 KiB of a device.
func ParseSuper(b []byte) (Super, error) {
	if len(b) < probeLen {
		return Super{}, fmt.Errorf("%w: short read (%d bytes)", ErrUnknownFS, len(b))
	}
	sb, err := ext4fs.ParseSuperblock(b[ext4fs.SuperOffset:probeLen])
	if err != nil { // the only error left: no ext2/3/4 magic
		return Super{}, ErrUnknownFS
	}
	return Super{Type: sb.Type(), UUID: formatUUID(sb.UUID[:]), Label: sb.Label}, nil
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Probe reads the superblock of the device at path.
func Probe(path string) (Super, error) {
	f, err := os.Open(path)
	if err != nil {
		return Super{}, err
	}
	defer f.Close()
	b := make([]byte, probeLen)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Super{}, fmt.Errorf("read %s: %w", path, err)
	}
	s, err := ParseSuper(b[:n])
	if err != nil {
		return Super{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Spec is a parsed root= value.
type Spec struct {
	Path      string // /dev/...
	Label     string // LABEL=
	UUID      string // UUID=, lower case
	PartUUID  string // PARTUUID=, lower case
	PartLabel string // PARTLABEL=
}

func (s Spec) String() string {
	switch {
	case s.Label != "":
		return "LABEL=" + s.Label
	case s.UUID != "":
		return "UUID=" + s.UUID
	case s.PartUUID != "":
		return "PARTUUID=" + s.PartUUID
	case s.PartLabel != "":
		return "PARTLABEL=" + s.PartLabel
	}
	return s.Path
}

// ParseSpec parses root=.
func ParseSpec(v string) (Spec, error) {
	switch {
	case strings.HasPrefix(v, "LABEL="):
		return Spec{Label: strings.TrimPrefix(v, "LABEL=")}, nil
	case strings.HasPrefix(v, "UUID="):
		return Spec{UUID: strings.ToLower(strings.TrimPrefix(v, "UUID="))}, nil
	case strings.HasPrefix(v, "PARTUUID="):
		return Spec{PartUUID: strings.ToLower(strings.TrimPrefix(v, "PARTUUID="))}, nil
	case strings.HasPrefix(v, "PARTLABEL="):
		return Spec{PartLabel: strings.TrimPrefix(v, "PARTLABEL=")}, nil
	case strings.HasPrefix(v, "/dev/"):
		return Spec{Path: filepath.Clean(v)}, nil
	}
	return Spec{}, fmt.Errorf("root=%s: want /dev/NAME, LABEL=, UUID=, PARTUUID= or PARTLABEL=", v)
}

// Find returns the device path for spec and what its superblock says (zero
// for a path whose filesystem is unknown), or os.ErrNotExist.
func Find(sysBlock, devDir string, spec Spec) (string, Super, error) {
	if spec.Path != "" {
		if _, err := os.Stat(spec.Path); err != nil {
			return "", Super{}, err
		}
		s, _ := Probe(spec.Path)
		return spec.Path, s, nil
	}
	if spec.PartUUID != "" || spec.PartLabel != "" {
		dev, err := findPartition(sysBlock, devDir, spec)
		if err != nil {
			return "", Super{}, err
		}
		s, _ := Probe(dev)
		return dev, s, nil
	}
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return "", Super{}, fmt.Errorf("list block devices: %w", err)
	}
	for _, e := range entries {
		dev := filepath.Join(devDir, e.Name())
		s, err := Probe(dev)
		if err != nil {
			continue
		}
		if (spec.Label != "" && s.Label == spec.Label) || (spec.UUID != "" && s.UUID == spec.UUID) {
			return dev, s, nil
		}
	}
	return "", Super{}, os.ErrNotExist
}

// Wait polls for spec until it appears or timeout passes. Devices appear
// within milliseconds of their driver loading, so a short poll costs nothing
// and needs no uevent plumbing.
func Wait(spec Spec, timeout time.Duration) (string, Super, error) {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		dev, s, err := Find("/sys/class/block", "/dev", spec)
		if err == nil {
			return dev, s, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", Super{}, err
		}
		if time.Now().After(deadline) {
			return "", Super{}, fmt.Errorf("root device %s did not appear within %v: %w", spec, timeout, os.ErrNotExist)
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}
