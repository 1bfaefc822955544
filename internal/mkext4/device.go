package mkext4

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/ext4fs"
)

// device is the open file or block device being formatted.
type device struct {
	f        *os.File
	blockDev bool
	size     int64 // bytes to use
	fileSize int64 // a regular file's size now
}

// openDevice opens path for writing. A block device is opened exclusively,
// which fails while it, or a partition of it, is mounted.
func openDevice(path string, size int64) (*device, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_EXCL, 0)
		if err != nil {
			return nil, err
		}
		var devSize uint64
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&devSize))); errno != 0 {
			f.Close()
			return nil, fmt.Errorf("BLKGETSIZE64: %w", errno)
		}
		if size > int64(devSize) {
			f.Close()
			return nil, fmt.Errorf("size %d is larger than the device's %d bytes", size, devSize)
		}
		if size == 0 {
			size = int64(devSize)
		}
		return &device{f: f, blockDev: true, size: size}, nil
	case fi.Mode().IsRegular():
		if size == 0 && fi.Size() == 0 {
			return nil, errors.New("empty file: give a size")
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		if size == 0 {
			size = fi.Size()
		}
		return &device{f: f, size: size, fileSize: fi.Size()}, nil
	}
	return nil, fmt.Errorf("%v: not a regular file or block device", fi.Mode().Type())
}

// grow extends a regular file shorter than the size to use.
func (d *device) grow() error {
	if d.blockDev || d.size <= d.fileSize {
		return nil
	}
	return d.f.Truncate(d.size)
}

func (d *device) writeBlock(block uint64, data []byte) error {
	if _, err := d.f.WriteAt(data, int64(block)*ext4fs.BlockSize); err != nil {
		return err
	}
	return nil
}

// zero makes n bytes at off read as zero: with fallocate, which frees a
// file's blocks or has the disk zero them without a transfer, or else by
// writing zeros.
func (d *device) zero(off, n int64) error {
	mode := uint32(unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE)
	if d.blockDev {
		// The kernel writes zeros itself where the disk cannot.
		mode = unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE
	}
	if unix.Fallocate(int(d.f.Fd()), mode, off, n) == nil {
		return nil
	}
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		chunk := min(n, int64(len(zeros)))
		if _, err := d.f.WriteAt(zeros[:chunk], off); err != nil {
			return fmt.Errorf("zero %d bytes at %d: %w", n, off, err)
		}
		off += chunk
		n -= chunk
	}
	return nil
}

// rereadPartitions makes the kernel drop the partitions of a disk whose
// partition table was just wiped, so that nothing finds them any more. It
// is best effort: loop devices and partitions refuse, harmlessly.
func (d *device) rereadPartitions() {
	if d.blockDev {
		_ = unix.IoctlSetInt(int(d.f.Fd()), unix.BLKRRPART, 0)
	}
}
