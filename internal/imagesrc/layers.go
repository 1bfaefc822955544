package imagesrc

import (
	"context"
	"fmt"
	"io"

	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/rootfs"
)

// DefaultMaxLayerSize is the default limit of one layer, unpacked.
const DefaultMaxLayerSize = 32 << 30

// Progress is told what a build or a pull is doing, for a progress bar or log lines.
type Progress interface {
	// Start begins a step that moves total bytes (-1: unknown).
	Start(step string, total int64)
	// Add counts n more bytes of the current step.
	Add(n int64)
	// Done ends the current step.
	Done()
}

// NoProgress reports nothing.
type NoProgress struct{}

func (NoProgress) Start(string, int64) {}
func (NoProgress) Add(int64)           {}
func (NoProgress) Done()               {}

// Applier takes one layer's tar stream on top of the layers before it: a
// staging tree on disk (rootfs.Extractor) or one in memory (ext4w.Tree).
type Applier interface {
	Apply(ctx context.Context, r io.Reader, layer bool) error
}

var _ Applier = (*rootfs.Extractor)(nil)

// ExtractLayers flattens the image's layers into x, bottom first, each
// checked against its digests once read to its end.
func ExtractLayers(ctx context.Context, x Applier, im *ociimage.Image, prog Progress) error {
	for _, l := range im.Layers {
		prog.Start(fmt.Sprintf("%s of %d", l, len(im.Layers)), l.Size)
		lr, err := l.Open(func(n int) { prog.Add(int64(n)) })
		if err != nil {
			prog.Done()
			return fmt.Errorf("%s: %w", im.Name, err)
		}
		err = x.Apply(ctx, lr, true)
		if err == nil {
			err = lr.Verify()
		}
		lr.Close()
		prog.Done()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", im.Name, l, err)
		}
	}
	return nil
}
