package ociimage

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// openRemote resolves ref in its registry (an index to the platform's
// image) and reads its manifest and config. Layers stream when opened.
func openRemote(ctx context.Context, ref string, o Options) (*Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(o.platform())}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, err)
	}
	label := r.String()
	// remote checks the manifest against a digest reference; the config
	// is checked here against the manifest.
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", label, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest digest: %w", label, err)
	}
	im := &Image{Name: label, Digest: d.String()}
	if im.RawConfig, err = img.RawConfigFile(); err != nil {
		return nil, fmt.Errorf("%s: config: %w", label, err)
	}
	if err := checkBlob(label+": config", im.RawConfig, m.Config.Digest); err != nil {
		return nil, err
	}
	if err := parseConfig(im, len(m.Layers)); err != nil {
		return nil, err
	}
	if p := o.platform(); im.Config.Architecture != "" && im.Config.Architecture != p.Architecture && o.Warnf != nil {
		o.Warnf("%s is an image for %s/%s, not %s", label, im.Config.OS, im.Config.Architecture, p)
	}
	for i, ld := range m.Layers {
		ld := ld
		im.Layers = append(im.Layers, &Layer{Index: i, Digest: ld.Digest, DiffID: im.Config.RootFS.DiffIDs[i], Size: ld.Size, MediaType: string(ld.MediaType),
			open: func() (io.ReadCloser, error) {
				l, err := img.LayerByDigest(ld.Digest)
				if err != nil {
					return nil, err
				}
				return l.Compressed()
			}})
	}
	return im, nil
}
