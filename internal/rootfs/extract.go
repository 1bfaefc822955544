package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Meta is what the image says about one inode beyond its type and content:
// the fields an unprivileged extractor cannot put on the staged file itself,
// applied later to the disk image inode.
type Meta struct {
	UID, GID int
	Perm     uint32 // permission bits, setuid, setgid and sticky (07777)
	Mtime    int64  // seconds since the epoch
}

// Marker stamps. Every staged inode gets atime = MarkerBase + its index in
// Result.Metas; mkfs.ext4 -d copies the atime into the image inode, where
// the marker finds the Meta again. See ext4img.Patch.
const MarkerBase = 1

// Options tune Extract.
type Options struct {
	// Unprivileged skips what needs root (device nodes, xattrs outside
	// the user.* namespace) instead of trying it. Either way a refusal by
	// the kernel (EPERM) counts as skipped, never as an error.
	Unprivileged bool
	// Warnf reports entries that are skipped. Nil discards.
	Warnf func(format string, args ...any)
}

// Result describes what Extract staged.
type Result struct {
	// Metas holds the metadata of every staged inode, by marker.
	Metas []Meta
	// LostFound reports whether the tar has a top-level lost+found
	// directory (mkfs.ext4 then reuses the image's own inode 11 for it).
	LostFound bool
	// Entries counts the tar entries read.
	Entries int
	// SkippedDevices lists device nodes not created.
	SkippedDevices []string
	// SkippedXattrs lists "name on path" for xattrs not set.
	SkippedXattrs []string
}

// MetaFor returns the Meta a staged inode's atime marker points at.
func (r *Result) MetaFor(atime int64) (Meta, bool) {
	i := atime - MarkerBase
	if i < 0 || i >= int64(len(r.Metas)) {
		return Meta{}, false
	}
	return r.Metas[i], true
}

type extractor struct {
	root string
	opt  Options
	res  *Result
	// late holds the markers of directories and symlinks, stamped again
	// at the end: adding children changes a directory's mtime, and
	// reading a symlink while resolving later entries changes its atime.
	late map[string]int64
	buf  []byte
}

// Extract reads the tar stream r into the existing, empty, private
// directory root. Staged files and directories are created with modes
// 0600 and 0700 and owned by the caller; their real ownership and modes
// go to Result.Metas. An unsafe entry stops extraction with an *EntryError
// wrapping ErrDotDot, ErrSymlinkEscape or ErrHardlinkEscape.
func Extract(ctx context.Context, r io.Reader, root string) (*Result, error) {
	return ExtractWith(ctx, r, root, Options{Unprivileged: os.Geteuid() != 0})
}

// ExtractWith is Extract with options.
func ExtractWith(ctx context.Context, r io.Reader, root string, opt Options) (*Result, error) {
	if opt.Warnf == nil {
		opt.Warnf = func(string, ...any) {}
	}
	x := &extractor{root: root, opt: opt, res: &Result{}, late: map[string]int64{}, buf: make([]byte, 1<<20)}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		x.res.Entries++
		if err := x.entry(hdr, tr); err != nil {
			return nil, err
		}
	}
	for rel, marker := range x.late {
		if err := x.stamp(rel, marker); err != nil {
			return nil, err
		}
	}
	return x.res, nil
}

func (x *extractor) addMeta(m Meta) int64 {
	x.res.Metas = append(x.res.Metas, m)
	return MarkerBase + int64(len(x.res.Metas)-1)
}

func (x *extractor) host(rel string) string {
	return filepath.Join(x.root, filepath.FromSlash(rel))
}

// stamp sets the staged inode's atime to its marker and its mtime to the
// image's mtime, without following a symlink.
func (x *extractor) stamp(rel string, marker int64) error {
	i := marker - MarkerBase
	ts := []unix.Timespec{{Sec: marker}, {Sec: x.res.Metas[i].Mtime}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, x.host(rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: x.host(rel), Err: err}
	}
	return nil
}

// removeExisting clears the way for a new inode at rel.
func (x *extractor) removeExisting(rel string) error {
	h := x.host(rel)
	fi, err := os.Lstat(h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		for d := range x.late {
			if d == rel || strings.HasPrefix(d, rel+"/") {
				delete(x.late, d)
			}
		}
		return os.RemoveAll(h)
	}
	delete(x.late, rel)
	return os.Remove(h)
}

func (x *extractor) entry(hdr *tar.Header, tr io.Reader) error {
	fail := func(op string, err error) error { return &EntryError{Name: hdr.Name, Op: op, Err: err} }
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	name, err := CleanName(hdr.Name)
	if err != nil {
		return fail("checking name", err)
	}
	if name == "." {
		// The root directory keeps the disk's own root inode (0:0, 0755).
		return nil
	}
	meta := Meta{UID: hdr.Uid, GID: hdr.Gid, Perm: uint32(hdr.Mode) & 0o7777, Mtime: hdr.ModTime.Unix()}
	dir, base := path.Split(name)
	rdir, err := resolveDir(x.root, dir, true, func(rel string) error {
		// A parent the tar never named: root-owned 0755, with the
		// mtime of the entry that needed it.
		x.late[rel] = x.addMeta(Meta{Perm: 0o755, Mtime: meta.Mtime})
		return nil
	})
	if err != nil {
		return fail("resolving parent directory", err)
	}
	rel := path.Join(rdir, base)
	h := x.host(rel)
	if rel == "lost+found" {
		x.res.LostFound = true
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		fi, err := os.Lstat(h)
		if err == nil && !fi.IsDir() {
			if err := x.removeExisting(rel); err != nil {
				return fail("replacing", err)
			}
			err = fs.ErrNotExist
		}
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(h, 0o700); err != nil {
				return fail("creating directory", err)
			}
		} else if err != nil {
			return fail("creating directory", err)
		}
		x.late[rel] = x.addMeta(meta)
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		if err := x.removeExisting(rel); err != nil {
			return fail("replacing", err)
		}
		f, err := os.OpenFile(h, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return fail("creating file", err)
		}
		_, err = io.CopyBuffer(f, tr, x.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail("writing file", err)
		}
		if err := x.stamp(rel, x.addMeta(meta)); err != nil {
			return fail("setting times", err)
		}
	case tar.TypeSymlink:
		if err := x.removeExisting(rel); err != nil {
			return fail("replacing", err)
		}
		if err := os.Symlink(hdr.Linkname, h); err != nil {
			return fail("creating symlink", err)
		}
		x.late[rel] = x.addMeta(meta)
	case tar.TypeLink:
		target, err := x.linkTarget(hdr.Linkname)
		if err != nil {
			return fail("resolving hard link target "+fmt.Sprintf("%q", hdr.Linkname), err)
		}
		if target == rel {
			return nil
		}
		fi, err := os.Lstat(x.host(target))
		if err != nil {
			return fail("resolving hard link target "+fmt.Sprintf("%q", hdr.Linkname), err)
		}
		if fi.IsDir() {
			return fail("creating hard link", fmt.Errorf("target %q is a directory", hdr.Linkname))
		}
		if err := x.removeExisting(rel); err != nil {
			return fail("replacing", err)
		}
		if err := os.Link(x.host(target), h); err != nil {
			return fail("creating hard link", err)
		}
	case tar.TypeChar, tar.TypeBlock:
		if x.opt.Unprivileged {
			x.res.SkippedDevices = append(x.res.SkippedDevices, "/"+rel)
			return nil
		}
		if err := x.removeExisting(rel); err != nil {
			return fail("replacing", err)
		}
		mode := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(h, mode|0o600, int(dev)); err != nil {
			if errors.Is(err, unix.EPERM) {
				x.res.SkippedDevices = append(x.res.SkippedDevices, "/"+rel)
				return nil
			}
			return fail("creating device node", &fs.PathError{Op: "mknod", Path: h, Err: err})
		}
		if err := x.stamp(rel, x.addMeta(meta)); err != nil {
			return fail("setting times", err)
		}
	case tar.TypeFifo:
		if err := x.removeExisting(rel); err != nil {
			return fail("replacing", err)
		}
		if err := unix.Mkfifo(h, 0o600); err != nil {
			return fail("creating fifo", &fs.PathError{Op: "mkfifo", Path: h, Err: err})
		}
		if err := x.stamp(rel, x.addMeta(meta)); err != nil {
			return fail("setting times", err)
		}
	default:
		x.opt.Warnf("tar entry %q: type %q not supported, skipped", hdr.Name, hdr.Typeflag)
		return nil
	}
	return x.xattrs(hdr, rel)
}

// linkTarget resolves a hard link's target name to a path relative to the
// root, refusing one outside it. The target's last component is not
// followed: a hard link to a symlink links the symlink, as link(2) does.
func (x *extractor) linkTarget(name string) (string, error) {
	clean, err := CleanName(name)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrHardlinkEscape, err)
	}
	if clean == "." {
		return "", fmt.Errorf("%w: target is the root", ErrHardlinkEscape)
	}
	dir, base := path.Split(clean)
	rdir, err := resolveDir(x.root, dir, false, nil)
	if errors.Is(err, ErrSymlinkEscape) {
		return "", fmt.Errorf("%w: %w", ErrHardlinkEscape, err)
	}
	if err != nil {
		return "", err
	}
	return path.Join(rdir, base), nil
}

// xattrs sets the entry's extended attributes (PAX SCHILY.xattr records).
func (x *extractor) xattrs(hdr *tar.Header, rel string) error {
	if hdr.Typeflag == tar.TypeLink {
		return nil
	}
	var names []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		attr := strings.TrimPrefix(k, "SCHILY.xattr.")
		skip := func() { x.res.SkippedXattrs = append(x.res.SkippedXattrs, attr+" on /"+rel) }
		if x.opt.Unprivileged && !strings.HasPrefix(attr, "user.") {
			skip()
			continue
		}
		err := unix.Lsetxattr(x.host(rel), attr, []byte(hdr.PAXRecords[k]), 0)
		switch {
		case err == nil:
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EACCES):
			skip()
		default:
			return &EntryError{Name: hdr.Name, Op: "setting xattr " + attr, Err: &fs.PathError{Op: "lsetxattr", Path: x.host(rel), Err: err}}
		}
	}
	return nil
}
