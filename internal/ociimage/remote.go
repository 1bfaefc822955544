package ociimage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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
	repo := r.Context()
	auth, err := authn.Resolve(ctx, kc, repo)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: credentials for %s: %w", r, repo.RegistryStr(), err)
	}
	// The handshake (ping, token) is made here, over our transport, so
	// that remote takes the result as it is: it would otherwise wrap the
	// transport in retries of its own, on top of ours.
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, o.Net.Transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, remoteError(err))
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithTransport(rt), remote.WithPlatform(o.platform()))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", r, remoteError(err))
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
					return nil, remoteError(err)
				}
				rc, err := l.Compressed()
				if err != nil {
					return nil, remoteError(err)
				}
				return rc, nil
			}})
	}
	return im, nil
}

// remoteError makes a registry's error one line. When the HTTPS try of a
// registry that may also speak HTTP failed on its certificate, that is
// the whole story: the HTTP try's complaint (an HTTPS server's error page)
// is left out. An error page's line breaks become "; ".
func remoteError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && isCertError(ue) {
		err = ue
	}
	if !strings.Contains(err.Error(), "\n") {
		return err
	}
	return oneLine{err}
}

func isCertError(err error) bool {
	var (
		cert *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		hn   x509.HostnameError
		ci   x509.CertificateInvalidError
	)
	return errors.As(err, &cert) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// oneLine is an error whose text has no line break.
type oneLine struct{ err error }

func (e oneLine) Unwrap() error { return e.err }

func (e oneLine) Error() string {
	var parts []string
	for _, l := range strings.Split(e.err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
