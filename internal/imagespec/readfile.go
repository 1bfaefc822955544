package imagespec

import (
	"errors"
	"io"
	"io/fs"
	"os"
)

// ReadRootFile reads a file of a root for the machine's own use (the image
// configuration, passwd and group) without updating its access time where
// the system allows: on a disk made from an image every atime is old, so
// the first read of each file would otherwise write an inode through the
// journal while the machine boots.
func ReadRootFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|noAtime, 0)
	if noAtime != 0 && errors.Is(err, fs.ErrPermission) {
		// O_NOATIME needs the file's owner or CAP_FOWNER.
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
