package imagebuild

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/u-root/mkuimage/cpio"
)

// BaseRecords are the entries every image starts from, given to u-root as
// its base archive in place of its default one, so that nothing of the build
// host (its /etc/localtime, its resolv.conf) lands in the image.
func BaseRecords() []cpio.Record {
	return []cpio.Record{
		cpio.Directory("bin", 0o755),
		cpio.Directory("dev", 0o755),
		cpio.Directory("etc", 0o755),
		cpio.Directory("lib", 0o755),
		cpio.Directory("proc", 0o555),
		cpio.Directory("root", 0o700),
		cpio.Directory("run", 0o755),
		cpio.Directory("sys", 0o555),
		cpio.Directory("tmp", 0o1777),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.CharDev("dev/null", 0o666, 1, 3),
	}
}

// WriteArchive writes records as a newc cpio archive with its trailer.
func WriteArchive(w io.Writer, recs []cpio.Record) error {
	rw := cpio.Newc.Writer(w)
	if err := cpio.WriteRecords(rw, recs); err != nil {
		return err
	}
	return cpio.WriteTrailer(rw)
}

// ReadArchive reads every record of the newc archive in r. Record contents
// are read lazily from r, which must stay open while they are used.
func ReadArchive(r io.ReaderAt) ([]cpio.Record, error) {
	return cpio.ReadAllRecords(cpio.EOFReader{RecordReader: cpio.Newc.Reader(r)})
}

// Image is the set of entries of an initramfs, keyed by clean relative path.
type Image struct {
	recs map[string]cpio.Record
}

// NewImage returns an empty image.
func NewImage() *Image {
	return &Image{recs: make(map[string]cpio.Record)}
}

// Add puts r into the image. The same directory may be added twice (the
// first one's mode stays); any other entry that is already there is an
// error unless both are identical.
func (im *Image) Add(r cpio.Record) error {
	name := cpio.Normalize(r.Name)
	if name == "." || name == "" || strings.HasPrefix(name, "../") || name == ".." {
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			return nil // the root itself
		}
		return fmt.Errorf("image entry %q: path outside the image root", r.Name)
	}
	r.Name = name
	if old, ok := im.recs[name]; ok {
		if isDir(old) && isDir(r) {
			return nil
		}
		same, err := sameRecord(old, r)
		if err != nil {
			return fmt.Errorf("image entry %s: %w", name, err)
		}
		if !same {
			return fmt.Errorf("image entry %s: added twice with different contents (mode %#o and %#o)", name, old.Mode, r.Mode)
		}
		return nil
	}
	im.recs[name] = r
	return nil
}

// AddFile adds a regular file with the given contents and permissions.
func (im *Image) AddFile(name string, data []byte, perm uint64) error {
	return im.Add(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm&0o7777}))
}

// Get returns the entry at name.
func (im *Image) Get(name string) (cpio.Record, bool) {
	r, ok := im.recs[cpio.Normalize(name)]
	return r, ok
}

// Records returns the image's entries in a reproducible form: every parent
// directory present (missing ones are added with mode 0755), sorted by path
// so that a directory comes before what it holds, with times, owners, inode
// and device numbers zeroed.
func (im *Image) Records() []cpio.Record {
	all := make(map[string]cpio.Record, len(im.recs))
	for n, r := range im.recs {
		all[n] = r
	}
	for n := range im.recs {
		for d := path.Dir(n); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = cpio.Directory(d, 0o755)
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	// Plain byte order puts "a" before "a/b": a prefix sorts first.
	sort.Strings(names)
	out := make([]cpio.Record, 0, len(names))
	for _, n := range names {
		r := cpio.MakeReproducible(all[n])
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		} else {
			r.NLink = 1
		}
		out = append(out, r)
	}
	return out
}

func isDir(r cpio.Record) bool { return r.Mode&cpio.S_IFMT == cpio.S_IFDIR }

func sameRecord(a, b cpio.Record) (bool, error) {
	if a.Mode != b.Mode || a.FileSize != b.FileSize || a.Rmajor != b.Rmajor || a.Rminor != b.Rminor {
		return false, nil
	}
	da, err := contents(a)
	if err != nil {
		return false, err
	}
	db, err := contents(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(da, db), nil
}

// contents reads a record's whole data.
func contents(r cpio.Record) ([]byte, error) {
	if r.ReaderAt == nil || r.FileSize == 0 {
		return nil, nil
	}
	b := make([]byte, r.FileSize)
	n, err := r.ReadAt(b, 0)
	if n == len(b) {
		return b, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("reading %s: %w", r.Name, err)
}

// writeArchiveFile writes recs to a new file at p.
func writeArchiveFile(p string, recs []cpio.Record) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := WriteArchive(f, recs); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}
