package ext4w

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// zeroRange makes n bytes of f at off read as zeros: a hole punched where
// the file system can, zeros written where it cannot.
func zeroRange(f *os.File, off, n int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil {
		return nil
	}
	return writeZeros(f, off, n)
}

// openDirect opens f again for writes that bypass the page cache; an
// error where its file system does not take them.
func openDirect(f *os.File) (*os.File, error) {
	return os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), os.O_WRONLY|unix.O_DIRECT, 0)
}

func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
