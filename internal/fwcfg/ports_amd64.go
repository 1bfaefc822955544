package fwcfg

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

func inb(port uint16) uint8
func outw(port uint16, val uint16)

const (
	ctlPort   = 0x510 // selector, written 16 bits wide
	dataPort  = 0x511 // the selected item, a byte at a time
	selSig    = 0x0000
	selFileDr = 0x0019
)

// readPorts reads name through the I/O ports; selecting an item rewinds
// it to its first byte.
func readPorts(name string, max int) ([]byte, bool, error) {
	// ioperm(2) grants the ports to the calling thread only.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Ioperm(ctlPort, 2, 1); err != nil {
		return nil, false, fmt.Errorf("fw_cfg: ioperm %#x: %w", ctlPort, err)
	}
	defer unix.Ioperm(ctlPort, 2, 0)
	read := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = inb(dataPort)
		}
		return b
	}
	outw(ctlPort, selSig)
	if sig := string(read(4)); sig != "QEMU" {
		return nil, false, nil // no fw_cfg device here
	}
	outw(ctlPort, selFileDr)
	count := binary.BigEndian.Uint32(read(4))
	if count > maxFiles {
		return nil, false, fmt.Errorf("fw_cfg directory: %d files; at most %d", count, maxFiles)
	}
	files, err := ParseDir(count, read(int(count)*dirEntrySize))
	if err != nil {
		return nil, false, err
	}
	for _, f := range files {
		if f.Name == name {
			outw(ctlPort, f.Select)
			return read(min(int(f.Size), max)), true, nil
		}
	}
	return nil, false, nil
}
