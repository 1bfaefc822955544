//go:build !linux

package ext4w

// hostXattrs reads no extended attributes where the host's calls differ
// from Linux's; a directory source there keeps none.
func hostXattrs(host string) ([]Xattr, error) { return nil, nil }
