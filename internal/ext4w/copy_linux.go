package ext4w

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var errNoCopyRange = errors.New("copy_file_range not available")

// copyRange copies with copy_file_range, in the kernel; errNoCopyRange
// (with nothing copied) where it cannot between these files.
func copyRange(src, dst *os.File, srcOff, dstOff, n int64) (int64, error) {
	var done int64
	for done < n {
		so, do := srcOff+done, dstOff+done
		k, err := unix.CopyFileRange(int(src.Fd()), &so, int(dst.Fd()), &do, int(n-done), 0)
		if err != nil {
			if done == 0 && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
				return 0, errNoCopyRange
			}
			return done, err
		}
		if k == 0 {
			return done, errors.New("copy_file_range: unexpected end of spool")
		}
		done += int64(k)
	}
	return done, nil
}
