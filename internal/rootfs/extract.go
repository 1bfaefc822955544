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
	// Dev is set for a device node. The staging tree holds an empty
	// regular file in its place (creating the node needs root); the disk
	// writer makes the real node in the image.
	Dev *Device
	// Xattrs are the inode's extended attributes, by name. None is set on
	// the staged file: the disk writer puts them into the image.
	Xattrs []Xattr
}

// Device is a character or block device node.
type Device struct {
	Block        bool
	Major, Minor uint32
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Marker stamps. Every staged inode gets atime = MarkerBase + its index in
// Result.Metas; mkfs.ext4 -d copies the atime into the image inode, where
// the marker finds the Meta again. See ext4img.Patch.
const MarkerBase = 1

// Whiteout names of the OCI image layer format.
const (
	WhiteoutPrefix = ".wh."
	WhiteoutOpaque = ".wh..wh..opq"
)

// Options tune an Extractor.
type Options struct {
	// MaxBytes stops a stream whose regular files add up to more bytes
	// (holes of sparse files counted) with ErrTooLarge. 0 is no limit.
	MaxBytes int64
	// Warnf reports entries that are skipped. Nil discards.
	Warnf func(format string, args ...any)
}

// Result describes what was staged.
type Result struct {
	// Metas holds the metadata of every staged inode, by marker.
	Metas []Meta
	// LostFound reports whether the tree has a top-level lost+found
	// directory (mkfs.ext4 then reuses the image's own inode 11 for it).
	LostFound bool
	// Entries counts the tar entries read.
	Entries int
}

// MetaFor returns the Meta a staged inode's atime marker points at.
func (r *Result) MetaFor(atime int64) (Meta, bool) {
	i := atime - MarkerBase
	if i < 0 || i >= int64(len(r.Metas)) {
		return Meta{}, false
	}
	return r.Metas[i], true
}

// ErrTooLarge: a stream unpacks to more than Options.MaxBytes.
var ErrTooLarge = errors.New("unpacks to more than the size limit")

// ErrWhiteout: a whiteout entry names no file ("" or ".." after the prefix).
var ErrWhiteout = errors.New("whiteout names no file")

// ErrAbsolute: an image layer entry has an absolute name. Image tools
// never write one; a flat tar's absolute names are taken relative to the
// root instead.
var ErrAbsolute = errors.New("absolute name in an image layer")

// Extractor stages one tar stream, or the layers of an image one on top of
// the other, into a private directory.
type Extractor struct {
	root string
	opt  Options
	res  *Result
	// late holds the markers of directories and symlinks, stamped again
	// at the end: adding children changes a directory's mtime, and
	// reading a symlink while resolving later entries changes its atime.
	late map[string]int64
	// touched holds the paths the current layer wrote and their
	// ancestors: a whiteout only hides what lower layers put there.
	touched map[string]bool
	layer   bool // the current stream is an image layer
	buf     []byte
}

// NewExtractor stages into the existing, empty, private directory root.
// Staged files and directories are created with modes 0600 and 0700 and
// owned by the caller; their real ownership and modes go to Result.Metas.
func NewExtractor(root string, opt Options) *Extractor {
	if opt.Warnf == nil {
		opt.Warnf = func(string, ...any) {}
	}
	return &Extractor{root: root, opt: opt, res: &Result{}, late: map[string]int64{}, buf: make([]byte, 1<<20)}
}

// Extract reads the flat tar stream r into the existing, empty, private
// directory root. An unsafe entry stops extraction with an *EntryError
// wrapping ErrDotDot, ErrSymlinkEscape or ErrHardlinkEscape.
func Extract(ctx context.Context, r io.Reader, root string) (*Result, error) {
	return ExtractWith(ctx, r, root, Options{})
}

// ExtractWith is Extract with options.
func ExtractWith(ctx context.Context, r io.Reader, root string, opt Options) (*Result, error) {
	x := NewExtractor(root, opt)
	if err := x.Apply(ctx, r, false); err != nil {
		return nil, err
	}
	return x.Finish()
}

// Apply reads one tar stream on top of what is staged. With layer set it
// is an image layer: whiteout entries (.wh.NAME, .wh..wh..opq) remove
// what lower layers staged instead of being staged themselves.
func (x *Extractor) Apply(ctx context.Context, r io.Reader, layer bool) error {
	x.touched = map[string]bool{}
	x.layer = layer
	var whiteout func(*tar.Header) (bool, error)
	if layer {
		whiteout = x.whiteout
	}
	return ReadTar(ctx, r, x.opt.MaxBytes, &x.res.Entries, whiteout, x.entry)
}

// ReadTar reads one tar stream for a writer of the flattened tree (this
// package's Extractor, the ext4 writer): it counts the entries into
// *entries, stops at maxBytes of regular files (0: no limit), gives each
// entry to whiteout first when that is set (an image layer; it reports
// whether the entry was a whiteout) and otherwise to entry, and names a
// cut-off stream as truncated.
func ReadTar(ctx context.Context, r io.Reader, maxBytes int64, entries *int,
	whiteout func(*tar.Header) (bool, error), entry func(*tar.Header, io.Reader) error) error {
	var total int64
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				return fmt.Errorf("reading tar: truncated: %w", err)
			}
			return fmt.Errorf("reading tar: %w", err)
		}
		*entries++
		if isRegular(hdr.Typeflag) {
			total += hdr.Size
			if maxBytes > 0 && (hdr.Size > maxBytes || total > maxBytes) {
				return &EntryError{Name: hdr.Name, Op: fmt.Sprintf("file of %d bytes", hdr.Size),
					Err: fmt.Errorf("%w: %d bytes so far, limit %d", ErrTooLarge, total, maxBytes)}
			}
		}
		if whiteout != nil {
			if done, err := whiteout(hdr); done || err != nil {
				if err != nil {
					return err
				}
				continue
			}
		}
		if err := entry(hdr, tr); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("reading tar: truncated: %w", err)
			}
			return err
		}
	}
}

func isRegular(typ byte) bool {
	switch typ {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		return true
	}
	return false
}

// Finish stamps the directories and symlinks and returns what was staged.
func (x *Extractor) Finish() (*Result, error) {
	for rel, marker := range x.late {
		if err := x.stamp(rel, marker); err != nil {
			return nil, err
		}
	}
	_, err := os.Lstat(filepath.Join(x.root, "lost+found"))
	x.res.LostFound = err == nil
	return x.res, nil
}

func (x *Extractor) addMeta(m Meta) int64 {
	x.res.Metas = append(x.res.Metas, m)
	return MarkerBase + int64(len(x.res.Metas)-1)
}

func (x *Extractor) host(rel string) string {
	return filepath.Join(x.root, filepath.FromSlash(rel))
}

// touch records that the current layer wrote rel.
func (x *Extractor) touch(rel string) {
	for rel != "." && rel != "" && !x.touched[rel] {
		x.touched[rel] = true
		rel = path.Dir(rel)
	}
}

// stamp sets the staged inode's atime to its marker and its mtime to the
// image's mtime, without following a symlink.
func (x *Extractor) stamp(rel string, marker int64) error {
	i := marker - MarkerBase
	ts := []unix.Timespec{{Sec: marker}, {Sec: x.res.Metas[i].Mtime}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, x.host(rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: x.host(rel), Err: err}
	}
	return nil
}

// removeExisting clears the way for a new inode at rel.
func (x *Extractor) removeExisting(rel string) error {
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

// whiteout applies a whiteout entry of a layer and reports whether hdr was
// one.
func (x *Extractor) whiteout(hdr *tar.Header) (bool, error) {
	name, err := CleanName(hdr.Name)
	if err != nil || strings.HasPrefix(hdr.Name, "/") {
		return false, nil // entry reports it
	}
	dir, base := path.Split(name)
	if !strings.HasPrefix(base, WhiteoutPrefix) {
		return false, nil
	}
	fail := func(op string, err error) error { return &EntryError{Name: hdr.Name, Op: op, Err: err} }
	// As for any entry, parents the layer omits are created.
	rdir, err := resolveDir(x.root, dir, true, func(rel string) error {
		x.late[rel] = x.addMeta(Meta{Perm: 0o755, Mtime: hdr.ModTime.Unix()})
		return nil
	})
	if err != nil {
		return true, fail("resolving whiteout directory", err)
	}
	x.touch(rdir)
	switch {
	case base == WhiteoutOpaque:
		if err := x.opaque(rdir); err != nil {
			return true, fail("applying opaque whiteout", err)
		}
	case strings.HasPrefix(base, WhiteoutPrefix+WhiteoutPrefix):
		// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content.
	default:
		target := strings.TrimPrefix(base, WhiteoutPrefix)
		if target == "" || target == "." || target == ".." {
			return true, fail("applying whiteout", ErrWhiteout)
		}
		rel := path.Join(rdir, target)
		if x.touched[rel] {
			return true, nil // only lower layers are hidden
		}
		if err := x.removeExisting(rel); err != nil {
			return true, fail("applying whiteout", err)
		}
	}
	return true, nil
}

// opaque removes what lower layers staged below the directory rel,
// keeping what the current layer wrote there.
func (x *Extractor) opaque(rel string) error {
	h := x.host(rel)
	if rel == "." {
		h = x.root
	}
	fi, err := os.Lstat(h)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := os.Open(h)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", h, err)
	}
	for _, n := range names {
		child := path.Join(rel, n)
		if !x.touched[child] {
			if err := x.removeExisting(child); err != nil {
				return err
			}
			continue
		}
		if err := x.opaque(child); err != nil {
			return err
		}
	}
	return nil
}

func (x *Extractor) entry(hdr *tar.Header, tr io.Reader) error {
	fail := func(op string, err error) error { return &EntryError{Name: hdr.Name, Op: op, Err: err} }
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	name, err := CleanName(hdr.Name)
	if err != nil {
		return fail("checking name", err)
	}
	if x.layer && strings.HasPrefix(hdr.Name, "/") {
		return fail("checking name", ErrAbsolute)
	}
	if name == "." {
		// The root directory keeps the disk's own root inode (0:0, 0755).
		return nil
	}
	meta := Meta{UID: hdr.Uid, GID: hdr.Gid, Perm: uint32(hdr.Mode) & 0o7777, Mtime: hdr.ModTime.Unix()}
	if hdr.Typeflag != tar.TypeLink {
		meta.Xattrs = xattrs(hdr)
	}
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
			x.touch(rel)
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
		// A placeholder: the node itself is made in the disk image.
		if err := x.removeExisting(rel); err != nil {
			return fail("replacing", err)
		}
		f, err := os.OpenFile(h, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return fail("creating device node placeholder", err)
		}
		f.Close()
		meta.Dev = &Device{Block: hdr.Typeflag == tar.TypeBlock, Major: uint32(hdr.Devmajor), Minor: uint32(hdr.Devminor)}
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
	x.touch(rel)
	return nil
}

// linkTarget resolves a hard link's target name to a path relative to the
// root, refusing one outside it. The target's last component is not
// followed: a hard link to a symlink links the symlink, as link(2) does.
func (x *Extractor) linkTarget(name string) (string, error) {
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

// xattrs returns the entry's extended attributes (PAX SCHILY.xattr
// records), sorted by name.
func xattrs(hdr *tar.Header) []Xattr {
	var out []Xattr
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && name != "" {
			out = append(out, Xattr{Name: name, Value: []byte(v)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
