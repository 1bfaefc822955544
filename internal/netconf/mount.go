package netconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/rootpath"
)

// bindInto bind-mounts src over p inside root, making an empty p to mount
// on when there is none.
func bindInto(root, p, src string) error {
	dst, err := rootpath.Resolve(root, p)
	if err != nil {
		return fmt.Errorf("%s in the root: %w", p, err)
	}
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.Mode().IsRegular():
	case err == nil:
		return fmt.Errorf("%s in the root is a %v, not a file: left alone", p, fi.Mode().Type())
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("%s in the root: %w", p, err)
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("%s in the root: %w", p, err)
		}
		f.Close()
	default:
		return fmt.Errorf("%s in the root: %w", p, err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	return nil
}
