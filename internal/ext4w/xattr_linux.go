package ext4w

import (
	"errors"
	"io/fs"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// hostXattrs reads the extended attributes of host, without following a
// symlink, sorted by name. A name that vanishes or that the file system
// lists but will not give is skipped.
func hostXattrs(host string) ([]Xattr, error) {
	list, err := xattrCall(func(b []byte) (int, error) { return unix.Llistxattr(host, b) })
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil, nil
		}
		return nil, &fs.PathError{Op: "llistxattr", Path: host, Err: err}
	}
	var out []Xattr
	for _, name := range strings.Split(string(list), "\x00") {
		if hiddenXattr(name) {
			continue
		}
		v, err := xattrCall(func(b []byte) (int, error) { return unix.Lgetxattr(host, name, b) })
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "lgetxattr " + name, Path: host, Err: err}
		}
		out = append(out, Xattr{Name: name, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// xattrCall runs a size-then-fetch xattr call, again while the size grows
// under it (ERANGE).
func xattrCall(call func([]byte) (int, error)) ([]byte, error) {
	for range 8 {
		sz, err := call(nil)
		if err != nil {
			return nil, err
		}
		if sz == 0 {
			return nil, nil
		}
		b := make([]byte, sz)
		sz, err = call(b)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:sz], nil
	}
	return nil, unix.ERANGE
}
