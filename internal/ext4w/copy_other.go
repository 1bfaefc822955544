//go:build !linux

package ext4w

import (
	"errors"
	"os"
)

var errNoCopyRange = errors.New("copy_file_range not available")

func copyRange(src, dst *os.File, srcOff, dstOff, n int64) (int64, error) {
	return 0, errNoCopyRange
}
