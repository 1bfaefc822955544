// Package rootfs extracts a flat root filesystem tar into a private staging
// directory without ever writing outside it.
//
// Entry names are cleaned first: a leading "/" is dropped (absolute names
// are taken relative to the root) and any ".." component is refused.
// Intermediate directories are then looked up one component at a time with
// lstat. A symlink met on the way is followed the way the kernel would
// follow it inside a chroot at the staging root: an absolute target starts
// again at the root, a relative one from the directory holding the link. A
// target that climbs above the root is refused. The last component of a name
// is never followed: a file replaces a symlink of the same name instead of
// writing through it, as tar does.
//
// The staging directory must be private to the extractor (a fresh temporary
// directory): the checks are made on paths, so they assume nobody else
// changes the tree while it is being extracted.
package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Errors reported for unsafe entries, each wrapped in an *EntryError.
var (
	// ErrDotDot: the entry name has a ".." component.
	ErrDotDot = errors.New(`name has a ".." component`)
	// ErrSymlinkEscape: a symlink on the entry's path leads outside the root.
	ErrSymlinkEscape = errors.New("path leads outside the root through a symlink")
	// ErrHardlinkEscape: a hard link's target is outside the root.
	ErrHardlinkEscape = errors.New("hard link target is outside the root")
	// ErrTooManyLinks: more symlinks than the kernel would follow.
	ErrTooManyLinks = errors.New("too many levels of symbolic links")
	// ErrNotDir: a component of the path is not a directory.
	ErrNotDir = errors.New("a component of the path is not a directory")
)

// maxSymlinks is the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// CleanName turns a tar entry name into a clean relative slash path. It
// drops leading slashes and "." components, refuses ".." components, and
// returns "." for the root itself.
func CleanName(name string) (string, error) {
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", ErrDotDot
		}
		parts = append(parts, c)
	}
	if len(parts) == 0 {
		return ".", nil
	}
	return strings.Join(parts, "/"), nil
}

// resolveDir resolves the clean relative directory path dir inside root,
// following symlinks within the root, and returns the resolved path relative
// to root ("." for the root). Missing directories are created with mkdir
// (mode 0700) when create is set, and reported through onCreate.
func resolveDir(root, dir string, create bool, onCreate func(rel string) error) (string, error) {
	return walk(root, dir, create, onCreate, false)
}

// walk resolves p inside root component by component. With lastFile set
// the last component may be a file (it is then returned as is) or missing
// (fs.ErrNotExist).
func walk(root, p string, create bool, onCreate func(rel string) error, lastFile bool) (string, error) {
	var stack []string // resolved components, each a real directory
	pending := splitRel(p)
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", ErrSymlinkEscape
			}
			stack = stack[:len(stack)-1]
			continue
		}
		rel := path.Join(append(append([]string{}, stack...), c)...)
		host := filepath.Join(root, filepath.FromSlash(rel))
		fi, err := os.Lstat(host)
		switch {
		case errors.Is(err, fs.ErrNotExist) && create:
			if err := os.Mkdir(host, 0o700); err != nil {
				return "", err
			}
			if onCreate != nil {
				if err := onCreate(rel); err != nil {
					return "", err
				}
			}
			stack = append(stack, c)
		case err != nil:
			if errors.Is(err, syscall.ENOTDIR) {
				return "", ErrNotDir
			}
			return "", err
		case fi.IsDir():
			stack = append(stack, c)
		case fi.Mode()&fs.ModeSymlink != 0:
			links++
			if links > maxSymlinks {
				return "", ErrTooManyLinks
			}
			target, err := os.Readlink(host)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:0]
			}
			pending = append(splitRel(target), pending...)
		case lastFile && len(pending) == 0:
			stack = append(stack, c)
		default:
			return "", ErrNotDir
		}
	}
	if len(stack) == 0 {
		return ".", nil
	}
	return path.Join(stack...), nil
}

func splitRel(p string) []string {
	return strings.Split(strings.Trim(p, "/"), "/")
}

// Resolve returns the host path of name inside root with every symlink on
// the way, the last component included, followed within the root, as the
// booted machine would see it. It creates nothing. It is for reading a file
// of the tree, such as /.ginit/image.json.
func Resolve(root, name string) (string, error) {
	clean, err := CleanName(name)
	if err != nil {
		return "", err
	}
	rel, err := walk(root, clean, false, nil, true)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, filepath.FromSlash(rel)), nil
}

// EntryError is the error for one tar entry.
type EntryError struct {
	Name string // the entry name as the tar has it
	Op   string // what was being done
	Err  error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("tar entry %q: %s: %v", e.Name, e.Op, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }
