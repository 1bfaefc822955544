package ociimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// store reads the named files of a layout or archive: a directory, or a
// tar file read in place (no extraction: each member is a section of the
// file).
type store interface {
	open(name string) (io.ReadCloser, int64, error)
	has(name string) bool
	String() string
}

// cleanMember normalizes a member name and refuses one that leaves the
// archive.
func cleanMember(name string) (string, error) {
	c := path.Clean("/" + strings.TrimPrefix(name, "./"))
	if strings.Contains("/"+name+"/", "/../") {
		return "", fmt.Errorf("member %q: has a \"..\" component", name)
	}
	return strings.TrimPrefix(c, "/"), nil
}

type dirStore struct{ dir string }

func (d dirStore) String() string { return d.dir }

func (d dirStore) open(name string) (io.ReadCloser, int64, error) {
	n, err := cleanMember(name)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", d.dir, err)
	}
	f, err := os.Open(filepath.Join(d.dir, filepath.FromSlash(n)))
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: not a regular file", f.Name())
	}
	return f, fi.Size(), nil
}

func (d dirStore) has(name string) bool {
	n, err := cleanMember(name)
	if err != nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(d.dir, filepath.FromSlash(n)))
	return err == nil && fi.Mode().IsRegular()
}

// tarStore is a tar file indexed by member name.
type tarStore struct {
	f       *os.File
	members map[string]section
	links   map[string]string // symlinks and hard links: name -> target member
}

type section struct{ off, size int64 }

func (t *tarStore) String() string { return t.f.Name() }

// openTarStore indexes the uncompressed tar file at p.
func openTarStore(p string) (*tarStore, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	t := &tarStore{f: f, members: map[string]section{}, links: map[string]string{}}
	if err := t.index(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return t, nil
}

func (t *tarStore) index() error {
	magic := make([]byte, 6)
	if n, _ := t.f.ReadAt(magic, 0); n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return errors.New("a gzip-compressed archive: decompress it first (gzip -dc FILE | oci2disk ...:-)")
	}
	tr := tar.NewReader(t.f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		name, err := cleanMember(hdr.Name)
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			// The tar reader has read exactly the headers: the file
			// offset is where this member's data starts.
			off, err := t.f.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			t.members[name] = section{off, hdr.Size}
			delete(t.links, name)
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			if target, err = cleanMember(target); err != nil {
				return err
			}
			t.links[name] = target
		case tar.TypeLink:
			target, err := cleanMember(hdr.Linkname)
			if err != nil {
				return err
			}
			t.links[name] = target
		}
	}
	return nil
}

func (t *tarStore) resolve(name string) (section, bool) {
	n, err := cleanMember(name)
	if err != nil {
		return section{}, false
	}
	for i := 0; i < 40; i++ {
		if s, ok := t.members[n]; ok {
			return s, true
		}
		next, ok := t.links[n]
		if !ok {
			return section{}, false
		}
		n = next
	}
	return section{}, false
}

func (t *tarStore) open(name string) (io.ReadCloser, int64, error) {
	s, ok := t.resolve(name)
	if !ok {
		return nil, 0, fmt.Errorf("%s: no member %q: %w", t.f.Name(), name, fs.ErrNotExist)
	}
	return io.NopCloser(io.NewSectionReader(t.f, s.off, s.size)), s.size, nil
}

func (t *tarStore) has(name string) bool {
	_, ok := t.resolve(name)
	return ok
}

func (t *tarStore) Close() error { return t.f.Close() }

// readMember reads a small member whole.
func readMember(s store, name string) ([]byte, error) {
	rc, _, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readAllLimited(rc, fmt.Sprintf("%s in %s", name, s))
}
