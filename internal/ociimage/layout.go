package ociimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations that name an image in an OCI layout.
const (
	annotRefName        = "org.opencontainers.image.ref.name"
	annotContainerdName = "io.containerd.image.name"
)

func blobName(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }

// readBlob reads a small blob and checks its digest.
func readBlob(s store, d v1.Descriptor, what string) ([]byte, error) {
	if d.Digest.Algorithm == "" || strings.ContainsAny(d.Digest.Hex, "/.") {
		return nil, fmt.Errorf("%s: bad digest %q", what, d.Digest)
	}
	b, err := readMember(s, blobName(d.Digest))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := checkBlob(what+" "+d.Digest.String(), b, d.Digest); err != nil {
		return nil, err
	}
	return b, nil
}

// openLayout reads the image named ref (or the only one, or the one for the
// platform) from an OCI image layout.
func openLayout(s store, name, ref string, plat v1.Platform) (*Image, error) {
	lay, err := readMember(s, "oci-layout")
	var ne *NetError
	if errors.As(err, &ne) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: not an OCI image layout: %w", name, err)
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(lay, &l); err != nil || l.Version == "" {
		return nil, fmt.Errorf("%s: oci-layout: not an OCI image layout file", name)
	}
	raw, err := readMember(s, "index.json")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", name, err)
	}
	descs := idx.Manifests
	if ref != "" {
		var match []v1.Descriptor
		for _, d := range descs {
			if n := d.Annotations[annotRefName]; n == ref || d.Annotations[annotContainerdName] == ref || strings.HasSuffix(d.Annotations[annotContainerdName], "/"+ref) {
				match = append(match, d)
			}
		}
		if len(match) == 0 {
			return nil, fmt.Errorf("%s: no image named %q (the layout has %s)", name, ref, names(descs))
		}
		descs = match
	}
	d, err := choose(s, name, descs, plat, 0)
	if err != nil {
		return nil, err
	}
	return layoutImage(s, name, d)
}

func names(descs []v1.Descriptor) string {
	var n []string
	for _, d := range descs {
		if r := d.Annotations[annotRefName]; r != "" {
			n = append(n, r)
		}
	}
	if len(n) == 0 {
		return fmt.Sprintf("%d unnamed entries", len(descs))
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// choose picks one image manifest among descs: the only one, or the one
// for the platform, going down nested indexes.
func choose(s store, name string, descs []v1.Descriptor, plat v1.Platform, depth int) (v1.Descriptor, error) {
	if depth > 4 {
		return v1.Descriptor{}, fmt.Errorf("%s: indexes nested too deep", name)
	}
	var cands []v1.Descriptor
	for _, d := range descs {
		if isIndex(d.MediaType) || isManifest(d.MediaType) {
			cands = append(cands, d)
		}
	}
	if len(cands) > 1 {
		var match []v1.Descriptor
		for _, d := range cands {
			if d.Platform == nil || d.Platform.Satisfies(plat) {
				match = append(match, d)
			}
		}
		if len(match) == 0 {
			return v1.Descriptor{}, fmt.Errorf("%s: no image for platform %s (it has %s)", name, plat, platforms(cands))
		}
		cands = match
	}
	switch {
	case len(cands) == 0:
		return v1.Descriptor{}, fmt.Errorf("%s: no image manifest in the index", name)
	case len(cands) > 1:
		return v1.Descriptor{}, fmt.Errorf("%s: %d images match platform %s: name one as oci:PATH:NAME (names: %s)", name, len(cands), plat, names(cands))
	}
	d := cands[0]
	if isManifest(d.MediaType) {
		if d.Platform != nil && !d.Platform.Satisfies(plat) {
			return v1.Descriptor{}, fmt.Errorf("%s: the image is for %s, not %s", name, d.Platform, plat)
		}
		return d, nil
	}
	raw, err := readBlob(s, d, name+": index")
	if err != nil {
		return v1.Descriptor{}, err
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: index %s: %w", name, d.Digest, err)
	}
	return choose(s, name, idx.Manifests, plat, depth+1)
}

func platforms(descs []v1.Descriptor) string {
	var p []string
	for _, d := range descs {
		if d.Platform != nil {
			p = append(p, d.Platform.String())
		}
	}
	return strings.Join(p, ", ")
}

// layoutImage reads the manifest d and its config from the store.
func layoutImage(s store, name string, d v1.Descriptor) (*Image, error) {
	raw, err := readBlob(s, d, name+": manifest")
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s: manifest %s: %w", name, d.Digest, err)
	}
	im := &Image{Name: name, Digest: d.Digest.String()}
	if im.RawConfig, err = readBlob(s, m.Config, name+": config"); err != nil {
		return nil, err
	}
	if err := parseConfig(im, len(m.Layers)); err != nil {
		return nil, err
	}
	for i, ld := range m.Layers {
		ld := ld
		if strings.ContainsAny(ld.Digest.Hex, "/.") || ld.Digest.Algorithm == "" {
			return nil, fmt.Errorf("%s: layer %d: bad digest %q", name, i+1, ld.Digest)
		}
		im.Layers = append(im.Layers, &Layer{Index: i, Digest: ld.Digest, DiffID: im.Config.RootFS.DiffIDs[i], Size: ld.Size, MediaType: string(ld.MediaType),
			open: func() (io.ReadCloser, error) {
				rc, size, err := s.open(blobName(ld.Digest))
				if err != nil {
					return nil, err
				}
				if size != ld.Size {
					rc.Close()
					return nil, fmt.Errorf("blob is %d bytes, the manifest says %d: %w", size, ld.Size, ErrDigest)
				}
				return rc, nil
			}})
	}
	return im, nil
}
