package disk

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/ext4w"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/ociimage"
)

// buildGo reads the source into a tree in memory and writes the image
// with ext4w.
func buildGo(ctx context.Context, o Options, warnf func(string, ...any), uuid *[16]byte, fixedTime *int64, clamp bool, start time.Time) (*Report, error) {
	rep := &Report{Output: o.Output}
	last := start
	// File data goes straight to its place in the image as it is read,
	// so the image is made first.
	tmp, err := createTemp(o.Output)
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// An image names its content by its config (the layers' diff_ids);
	// other sources are hashed as they are read.
	im := ext4w.NewImageFile(tmp, !o.Source.IsImage())
	defer im.Close()
	tree := ext4w.NewTree(im, ext4w.Options{MaxBytes: max(o.MaxLayerSize, 0), Warnf: warnf})
	src, err := readSource(ctx, o, tree, warnf, rep)
	if err != nil {
		return nil, err
	}
	rep.lap("read", &last)

	inodes, bytes, newest := tree.Stats()
	t := newest
	switch {
	case fixedTime != nil:
		t = *fixedTime
	case src.created != nil:
		t = *src.created
	}
	rep.Time, rep.Inodes, rep.Bytes = t, inodes, bytes
	var seed []byte
	if src.config != nil {
		c := sha256.Sum256(src.config)
		seed = append([]byte("image config "), c[:]...)
	}
	configData, err := addImageConfig(tree, &o.Config, src.config, t)
	if err != nil {
		return nil, err
	}
	rep.ImageJSON = configData != nil || hasImageConfig(tree)
	if err := addMountPoints(tree, t); err != nil {
		return nil, err
	}
	digest := tree.Digest(seed, src.config == nil)
	// The directory hash seed shapes the layout, so it comes from the
	// content alone; the UUID also from the layout.
	hashSeed := ids(digest, o.Label, 0, 0, 0, t, configData)[1]
	pl, err := tree.Plan(ext4w.Params{Size: o.Size, Free: o.Free, Label: o.Label, Time: t, Clamp: clamp, HashSeed: hashSeed})
	if errors.Is(err, ext4w.ErrNoSpace) {
		return nil, fmt.Errorf("%s: %w", o.Output, err)
	}
	if err != nil {
		return nil, err
	}
	rep.Special = pl.Special
	id := ids(digest, o.Label, pl.Size(), pl.Inodes(), pl.JournalBlocks(), t, configData)
	ids := ext4w.IDs{UUID: id[0]}
	if uuid != nil {
		ids.UUID = *uuid
	}
	rep.lap("layout", &last)

	o.Progress.Start("writing the file system", -1)
	err = pl.Write(ids)
	o.Progress.Done()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	rep.lap("write", &last)
	if err := commit(tmp.Name(), o.Output, rep, &last); err != nil {
		return nil, err
	}
	done = true
	rep.Size, rep.Free, rep.UUID = pl.Size(), pl.FreeBlocks()*ext4w.BlockSize, ext4img.FormatUUID(ids.UUID)
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// source is what a source brought beside its tree.
type source struct {
	config  []byte // the image's config document, for an image source
	created *int64 // the image's creation time, if it has one
}

// readSource reads the source into tree.
func readSource(ctx context.Context, o Options, tree *ext4w.Tree, warnf func(string, ...any), rep *Report) (*source, error) {
	src := &source{}
	switch o.Source.Kind {
	case imagesrc.KindDir:
		fi, err := os.Stat(o.Source.Path)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("source %s: not a directory", o.Source.Path)
		}
		ownedBy := map[uint32]int64{}
		o.Progress.Start("reading "+o.Source.String(), -1)
		err = tree.AddDir(ctx, o.Source.Path, ownedBy)
		o.Progress.Done()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", o.Source, err)
		}
		if uid := os.Geteuid(); uid != 0 && ownedBy[uint32(uid)] > 0 {
			warnf("%d files of %s are owned by uid %d (you) and keep that owner in the disk; extract the tree as root or give a tar to keep the image's ownership", ownedBy[uint32(uid)], o.Source.Path, uid)
		}
		return src, nil
	case imagesrc.KindTar:
		return src, readFlat(ctx, o, tree, o.Source.Path)
	case imagesrc.KindDocker, imagesrc.KindDockerArchive, imagesrc.KindOCI, imagesrc.KindOCIArchive, imagesrc.KindArchive:
	default:
		return nil, fmt.Errorf("source %q: unknown kind %q", o.Source, o.Source.Kind)
	}
	im, err := openImage(ctx, o, warnf)
	if im != nil {
		defer im.Close()
	}
	switch {
	case errors.Is(err, ociimage.ErrFlatTar):
		return src, readFlat(ctx, o, tree, im.Spool)
	case err != nil:
		return nil, err
	}
	if err := imagesrc.ExtractLayers(ctx, tree, im, o.Progress); err != nil {
		return nil, err
	}
	src.config = im.RawConfig
	if t, ok := im.Created(); ok {
		src.created = &t
	}
	rep.Image, rep.Layers = im.Digest, len(im.Layers)
	return src, nil
}

// readFlat reads a flat tar, counting its bytes for the progress report.
func readFlat(ctx context.Context, o Options, tree *ext4w.Tree, path string) error {
	r, closeTar, err := imagesrc.OpenTar(path, o.Stdin)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer closeTar()
	o.Progress.Start("reading "+o.Source.String(), -1)
	err = tree.Apply(ctx, &countingReader{r: r, add: o.Progress.Add}, false)
	o.Progress.Done()
	if err != nil {
		return fmt.Errorf("reading %s: %w", o.Source, err)
	}
	return nil
}

type countingReader struct {
	r   io.Reader
	add func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.add(int64(n))
	return n, err
}

// addImageConfig puts /.ginit/image.json into the tree, root-owned, 0644,
// stamped t: the image's document byte for byte, or one made or updated
// from the flags. It returns what it wrote; nil when nothing asked for a
// new document (a source's own one is then kept as it is).
func addImageConfig(tree *ext4w.Tree, c *Config, imageConfig []byte, t int64) ([]byte, error) {
	if !c.Any() && imageConfig == nil {
		return nil, nil
	}
	dir := tree.Root.Child(".ginit")
	if dir != nil && !dir.IsDir() {
		return nil, errors.New("/.ginit in the source is not a directory")
	}
	var existing []byte
	if dir != nil {
		if f := dir.Child("image.json"); f != nil && f.IsDir() {
			return nil, fmt.Errorf("%s in the source: is a directory", imagespec.ConfigPath)
		}
		if n := tree.Lookup(imagespec.ConfigPath, true); n != nil && n.Type() == ext4w.TypeReg && imageConfig == nil {
			b, err := tree.File.ReadFile(n.Data)
			if err != nil {
				return nil, fmt.Errorf("reading the source's %s: %w", imagespec.ConfigPath, err)
			}
			existing = b
		}
	}
	data := imageConfig
	if c.Any() {
		if imageConfig != nil {
			existing = imageConfig
		}
		var err error
		if data, err = c.Apply(existing); err != nil {
			return nil, err
		}
	}
	d, err := tree.File.AddBytes(data)
	if err != nil {
		return nil, err
	}
	if dir == nil {
		dir = ext4w.NewDir(0o755, 0, 0, t).Fixed()
		if err := tree.Put(".ginit", dir); err != nil {
			return nil, err
		}
	}
	return data, tree.Put(imagespec.ConfigPath[1:], (&ext4w.Node{Mode: ext4w.TypeReg | 0o644, Data: d}).Fixed())
}

// addMountPoints puts into the tree the mount points a container's root
// has (imagespec.MountDirs, and imagespec.EtcFiles empty in a real /etc)
// where the image has nothing by that name, root-owned, stamped t. A name
// the image has, of whatever type, is left as it is: ginit resolves it at
// boot.
func addMountPoints(tree *ext4w.Tree, t int64) error {
	for _, d := range imagespec.MountDirs {
		if tree.Root.Child(d.Name) != nil {
			continue
		}
		if err := tree.Put(d.Name, ext4w.NewDir(d.Perm, 0, 0, t).Fixed()); err != nil {
			return fmt.Errorf("mount point /%s: %w", d.Name, err)
		}
	}
	etc := tree.Root.Child("etc")
	if etc == nil || !etc.IsDir() {
		return nil
	}
	for _, name := range imagespec.EtcFiles {
		if etc.Child(name) != nil {
			continue
		}
		n := &ext4w.Node{Mode: ext4w.TypeReg | 0o644, Mtime: t}
		if err := tree.Put("etc/"+name, n.Fixed()); err != nil {
			return fmt.Errorf("mount point /etc/%s: %w", name, err)
		}
	}
	return nil
}

// hasImageConfig says whether the tree has a regular file at
// /.ginit/image.json, symlinks followed.
func hasImageConfig(tree *ext4w.Tree) bool {
	n := tree.Lookup(imagespec.ConfigPath, true)
	return n != nil && n.Type() == ext4w.TypeReg
}
