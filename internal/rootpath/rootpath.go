// Package rootpath resolves paths inside a root directory as if it were "/":
// absolute symlinks and ".." never lead out of it. ginit uses it to look at
// the root disk before it chroots into it.
package rootpath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Resolve follows p inside root as if root were "/": absolute symlinks and
// ".." stop at root. It returns the host path of the result. The last
// element need not exist.
func Resolve(root, p string) (string, error) {
	const maxLinks = 40
	links := 0
	resolved := "/"
	rest := strings.Split(path.Clean("/"+p), "/")
	for len(rest) > 0 {
		elem := rest[0]
		rest = rest[1:]
		if elem == "" || elem == "." {
			continue
		}
		if elem == ".." {
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, elem)
		fi, err := os.Lstat(filepath.Join(root, next))
		if errors.Is(err, fs.ErrNotExist) {
			// Nothing below a missing directory can be a link: the rest is
			// taken as it is, so callers can create it (a WorkingDir).
			return filepath.Join(root, next, path.Join(append([]string{"/"}, rest...)...)), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(root, resolved), nil
}
