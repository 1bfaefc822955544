//go:build !linux

package disk

import (
	"context"
	"errors"
	"time"
)

// buildMkfs needs Linux: the staging tree keeps owners and device numbers
// in atime markers that only Linux's stat reports the way it needs.
func buildMkfs(context.Context, Options, func(string, ...any), *[16]byte, *int64, bool, time.Time) (*Report, error) {
	return nil, errors.New("writer mkfs: works on Linux only; use the default writer")
}
