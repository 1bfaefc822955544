package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// TarOptions tune TarDir.
type TarOptions struct {
	// Owner, when set, owns every entry (uid, gid) instead of the file's
	// owner.
	Owner *[2]int
	// Clamp, when set, caps every mtime (SOURCE_DATE_EPOCH style).
	Clamp *time.Time
}

// TarDir writes the tree at dir to w as a tar, reproducibly: names in
// order, hard links as links, modes, owners, device numbers and xattrs as
// the files have them.
func TarDir(w io.Writer, dir string, o TarOptions) error {
	tw := tar.NewWriter(w)
	seen := map[[2]uint64]string{}
	buf := make([]byte, 1<<20)
	var walk func(rel string) error
	walk = func(rel string) error {
		host := filepath.Join(dir, rel)
		f, err := os.Open(host)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading directory %s: %w", host, err)
		}
		sort.Strings(names)
		for _, n := range names {
			r := n
			if rel != "" {
				r = rel + "/" + n
			}
			isDir, err := tarEntry(tw, filepath.Join(dir, r), r, o, seen, buf)
			if err != nil {
				return err
			}
			if isDir {
				if err := walk(r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return err
	}
	return tw.Close()
}

func tarEntry(tw *tar.Writer, host, rel string, o TarOptions, seen map[[2]uint64]string, buf []byte) (bool, error) {
	fi, err := os.Lstat(host)
	if err != nil {
		return false, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(host); err != nil {
			return false, err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return false, fmt.Errorf("%s: %w", host, err)
	}
	hdr.Name = rel
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uname, hdr.Gname = "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.ModTime = time.Unix(fi.ModTime().Unix(), 0)
	if o.Clamp != nil && hdr.ModTime.After(*o.Clamp) {
		hdr.ModTime = *o.Clamp
	}
	if o.Owner != nil {
		hdr.Uid, hdr.Gid = o.Owner[0], o.Owner[1]
	}
	hdr.Format = tar.FormatPAX
	key := [2]uint64{uint64(st.Dev), st.Ino}
	if fi.Mode().IsRegular() && st.Nlink > 1 {
		if first, ok := seen[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return false, tw.WriteHeader(hdr)
		}
		seen[key] = rel
	}
	if names, err := xattrNames(host); err == nil {
		for _, n := range names {
			v := make([]byte, 64<<10)
			sz, err := unix.Lgetxattr(host, n, v)
			if err != nil {
				continue
			}
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+n] = string(v[:sz])
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return false, fmt.Errorf("%s: %w", host, err)
	}
	if fi.Mode().IsRegular() {
		f, err := os.Open(host)
		if err != nil {
			return false, err
		}
		_, err = io.CopyBuffer(tw, f, buf)
		f.Close()
		if err != nil {
			return false, fmt.Errorf("%s: %w", host, err)
		}
	}
	return fi.IsDir(), nil
}

func xattrNames(host string) ([]string, error) {
	sz, err := unix.Llistxattr(host, nil)
	if err != nil || sz == 0 {
		return nil, err
	}
	b := make([]byte, sz)
	sz, err = unix.Llistxattr(host, b)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range strings.Split(strings.TrimRight(string(b[:sz]), "\x00"), "\x00") {
		// Labels the host puts on every file are not the image's.
		if n != "" && n != "security.selinux" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Spec describes an image to build.
type Spec struct {
	Config   v1.Config
	Created  time.Time
	Platform v1.Platform // DefaultPlatform when empty
	// Compression of the layers: "gzip" (default), "zstd" or "none".
	Compression string
	History     string // created_by of each layer's history entry
}

// NewLayer makes a layer of the uncompressed tar that open gives,
// compressed with "gzip" (or ""), "zstd", or "none".
func NewLayer(open tarball.Opener, comp string) (v1.Layer, error) {
	switch comp {
	case "", "gzip":
		return tarball.LayerFromOpener(open, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	case "zstd":
		return tarball.LayerFromOpener(open, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd), tarball.WithCompressedCaching)
	case "none":
		return uncompressedLayer(open)
	}
	return nil, fmt.Errorf("compression %q: want gzip, zstd or none", comp)
}

// NewImage builds an OCI image from uncompressed layer tars, bottom first,
// compressed as s.Compression says.
func NewImage(layers []tarball.Opener, s Spec) (v1.Image, error) {
	var ls []v1.Layer
	for i, open := range layers {
		l, err := NewLayer(open, s.Compression)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		ls = append(ls, l)
	}
	return FromLayers(ls, s)
}

// FromLayers builds an OCI image from layers, bottom first.
func FromLayers(layers []v1.Layer, s Spec) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for i, l := range layers {
		h := s.History
		if h == "" {
			h = fmt.Sprintf("layer %d", i+1)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: s.Created}, CreatedBy: h}, MediaType: mustMediaType(l)})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	p := s.Platform
	if p.OS == "" {
		p = DefaultPlatform()
	}
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config = s.Config
	cf.Created = v1.Time{Time: s.Created}
	return mutate.ConfigFile(img, cf)
}

func mustMediaType(l v1.Layer) types.MediaType {
	mt, err := l.MediaType()
	if err != nil {
		return types.OCILayer
	}
	return mt
}

// uncompressedLayer is a layer stored as a plain tar.
func uncompressedLayer(open tarball.Opener) (v1.Layer, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	return plainLayer{b: b}, nil
}

type plainLayer struct{ b []byte }

func (p plainLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(p.b))
	return h, err
}
func (p plainLayer) DiffID() (v1.Hash, error) { return p.Digest() }
func (p plainLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(p.b)), nil
}
func (p plainLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(p.b)), nil
}
func (p plainLayer) Size() (int64, error)                { return int64(len(p.b)), nil }
func (p plainLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }

// WriteLayout writes img into the OCI image layout at dir (created, or
// added to), named name by the org.opencontainers.image.ref.name
// annotation when name is not empty.
func WriteLayout(dir string, img v1.Image, name string) error {
	var lp layout.Path
	var err error
	if dirHasLayout(dir) {
		lp, err = layout.FromPath(dir)
	} else {
		lp, err = layout.Write(dir, empty.Index)
	}
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	var opts []layout.Option
	if name != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{annotRefName: name}))
	}
	if err := lp.AppendImage(img, opts...); err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return nil
}

// WriteLayoutIndex writes the index idx into a new OCI image layout at
// dir.
func WriteLayoutIndex(dir string, idx v1.ImageIndex) error {
	if _, err := layout.Write(dir, idx); err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return nil
}

func dirHasLayout(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "oci-layout"))
	return err == nil
}
