// Package pull puts a container image into a directory that is itself a
// root filesystem: the layers are fetched, checked against their digests and
// flattened with the code oci2disk uses, then given their real owners,
// modes, device nodes and xattrs in place. It needs root. A diskless boot
// (root=docker://REF) pulls into a tmpfs; an install (ginit.install=DISK)
// formats the disk as oci2disk would and pulls into it.
package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/rootfs"
)

// Options tune Into and Install.
type Options struct {
	Platform *v1.Platform // nil: ociimage.DefaultPlatform
	Progress imagesrc.Progress
	Warnf    func(string, ...any)
	// MaxLayerSize caps one layer unpacked; 0 is imagesrc.DefaultMaxLayerSize.
	MaxLayerSize int64
	Net          ociimage.Net // deadlines, retries and CAs of the requests
}

// Report says what was pulled.
type Report struct {
	Source imagespec.Source
	Layers int
	Bytes  int64 // compressed layer bytes read
}

// countingProgress adds up the bytes read for the report.
type countingProgress struct {
	imagesrc.Progress
	n *int64
}

func (c countingProgress) Add(n int64) { *c.n += n; c.Progress.Add(n) }

// Into pulls the image source names (docker://REF, oci:URL[:NAME], or any
// image source oci2disk takes) into root, an existing empty directory on a
// mount with noatime (the extraction keeps its markers in the atimes). It
// writes the image's configuration, byte for byte, to /.ginit/image.json
// and the source to imagespec.SourcePath.
func Into(ctx context.Context, source, root string, o Options) (*Report, error) {
	if err := checkEmpty(root); err != nil {
		return nil, err
	}
	im, o, err := open(ctx, source, o)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	return into(ctx, im, source, root, o)
}

// open opens the image source names, and fills in o's defaults.
func open(ctx context.Context, source string, o Options) (*ociimage.Image, Options, error) {
	src, err := imagesrc.ParseSource(source)
	if err != nil {
		return nil, o, err
	}
	if !src.IsImage() {
		return nil, o, fmt.Errorf("source %q: not a container image (want docker://REF or oci:URL)", source)
	}
	if o.Progress == nil {
		o.Progress = imagesrc.NoProgress{}
	}
	if o.Warnf == nil {
		o.Warnf = func(string, ...any) {}
	}
	if o.MaxLayerSize == 0 {
		o.MaxLayerSize = imagesrc.DefaultMaxLayerSize
	}
	im, err := ociimage.Open(ctx, src.Kind, src.Path, ociimage.Options{Platform: o.Platform, Net: o.Net, Warnf: o.Warnf})
	return im, o, err
}

// checkEmpty refuses a directory with anything in it but lost+found.
func checkEmpty(root string) error {
	ents, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("pull into %s: %w", root, err)
	}
	if len(ents) > 1 || len(ents) == 1 && ents[0].Name() != "lost+found" {
		return fmt.Errorf("pull into %s: not empty", root)
	}
	return nil
}

// into flattens the opened image into root and records its config and source.
func into(ctx context.Context, im *ociimage.Image, source, root string, o Options) (*Report, error) {
	rep := &Report{Source: imagespec.Source{Source: source, Digest: im.Digest}, Layers: len(im.Layers)}
	x := rootfs.NewExtractor(root, rootfs.Options{MaxBytes: o.MaxLayerSize, Warnf: o.Warnf})
	if err := imagesrc.ExtractLayers(ctx, x, im, countingProgress{o.Progress, &rep.Bytes}); err != nil {
		return nil, err
	}
	res, err := x.Finish()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := rootfs.Materialize(root, res); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	src, _ := json.Marshal(rep.Source)
	for name, data := range map[string][]byte{imagespec.ConfigPath: im.RawConfig, imagespec.SourcePath: append(src, '\n')} {
		if err := writeInRoot(root, name, data); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// writeInRoot writes data at name (/.ginit/...) inside root, making its
// directory; a link of the image on the way is followed within the root.
func writeInRoot(root, name string, data []byte) error {
	dir, err := rootfs.Resolve(root, path.Dir(name))
	if errors.Is(err, fs.ErrNotExist) {
		dir, err = filepath.Join(root, path.Dir(name)), nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, path.Base(name))
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}
