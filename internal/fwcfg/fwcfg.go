// Package fwcfg reads a named file out of QEMU's fw_cfg device: through the
// qemu_fw_cfg driver's sysfs files where the kernel has the driver, and
// otherwise, on x86, straight through the device's I/O ports (QEMU's
// docs/specs/fw_cfg.rst), so an image need not carry the module.
package fwcfg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Sysfs is where the qemu_fw_cfg driver shows fw_cfg's files.
const Sysfs = "/sys/firmware/qemu_fw_cfg"

// Read returns at most max bytes of the fw_cfg file name (opt/...), and
// whether it exists. Call it only on QEMU: the port interface assumes the
// device is there.
func Read(name string, max int) (data []byte, found bool, err error) {
	path := Sysfs + "/by_name/" + name + "/raw"
	f, err := os.Open(path)
	switch {
	case err == nil:
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, int64(max)))
		if err != nil {
			return nil, true, fmt.Errorf("read %s: %w", path, err)
		}
		return data, true, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, err
	}
	if _, err := os.Stat(Sysfs); err == nil {
		return nil, false, nil // the driver is there and has no such file
	}
	return readPorts(name, max)
}

// File is one entry of fw_cfg's file directory.
type File struct {
	Size   uint32
	Select uint16
	Name   string
}

// dirEntrySize is the size of one FWCfgFile: be32 size, be16 select,
// be16 reserved, char name[56].
const dirEntrySize = 64

// maxFiles bounds the directory's count, which comes from the device.
const maxFiles = 4096

// ParseDir decodes the file directory's entries (after its be32 count).
func ParseDir(count uint32, entries []byte) ([]File, error) {
	if count > maxFiles {
		return nil, fmt.Errorf("fw_cfg directory: %d files; at most %d", count, maxFiles)
	}
	if len(entries) < int(count)*dirEntrySize {
		return nil, fmt.Errorf("fw_cfg directory: %d bytes for %d files", len(entries), count)
	}
	files := make([]File, count)
	for i := range files {
		e := entries[i*dirEntrySize : (i+1)*dirEntrySize]
		name, _, _ := strings.Cut(string(e[8:]), "\x00")
		files[i] = File{Size: binary.BigEndian.Uint32(e), Select: binary.BigEndian.Uint16(e[4:]), Name: name}
	}
	return files, nil
}
