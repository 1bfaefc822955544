package ociimage

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// dockerManifest is one entry of a `docker save` archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

var hexName = regexp.MustCompile(`(?:^|/)([0-9a-f]{64})(?:\.json)?$`)

// openDockerArchive reads the image tagged ref (or the only one) from a
// `docker save` archive.
func openDockerArchive(s store, label, ref string) (*Image, error) {
	raw, err := readMember(s, "manifest.json")
	if err != nil {
		return nil, fmt.Errorf("%s: not a docker save archive: %w", label, err)
	}
	var ms []dockerManifest
	if err := json.Unmarshal(raw, &ms); err != nil {
		return nil, fmt.Errorf("%s: manifest.json: %w", label, err)
	}
	var m *dockerManifest
	switch {
	case ref != "":
		want, err := name.NewTag(ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", label, ref, err)
		}
		for i := range ms {
			for _, t := range ms[i].RepoTags {
				if tag, err := name.NewTag(t); err == nil && tag.Name() == want.Name() {
					m = &ms[i]
				}
			}
		}
		if m == nil {
			return nil, fmt.Errorf("%s: no image tagged %q (it has %s)", label, ref, tags(ms))
		}
	case len(ms) == 1:
		m = &ms[0]
	case len(ms) == 0:
		return nil, fmt.Errorf("%s: manifest.json lists no image", label)
	default:
		return nil, fmt.Errorf("%s: %d images in the archive: name one as docker-archive:PATH:TAG (tags: %s)", label, len(ms), tags(ms))
	}
	im := &Image{Name: label}
	if im.RawConfig, err = readMember(s, m.Config); err != nil {
		return nil, fmt.Errorf("%s: config: %w", label, err)
	}
	// The config is stored under its own digest.
	if sm := hexName.FindStringSubmatch(m.Config); sm != nil {
		if err := checkBlob(label+": config "+m.Config, im.RawConfig, v1.Hash{Algorithm: "sha256", Hex: sm[1]}); err != nil {
			return nil, err
		}
	}
	if err := parseConfig(im, len(m.Layers)); err != nil {
		return nil, err
	}
	for i, lp := range m.Layers {
		lp := lp
		l := &Layer{Index: i, DiffID: im.Config.RootFS.DiffIDs[i], Size: -1}
		// Newer archives store layers as OCI blobs, named by digest.
		if strings.HasPrefix(lp, "blobs/sha256/") {
			l.Digest = v1.Hash{Algorithm: "sha256", Hex: path.Base(lp)}
		}
		l.open = func() (io.ReadCloser, error) {
			rc, _, err := s.open(lp)
			return rc, err
		}
		rc, size, err := s.open(lp)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", label, i+1, err)
		}
		rc.Close()
		l.Size = size
		im.Layers = append(im.Layers, l)
	}
	return im, nil
}

func tags(ms []dockerManifest) string {
	var t []string
	for _, m := range ms {
		t = append(t, m.RepoTags...)
	}
	if len(t) == 0 {
		return "no tags"
	}
	return strings.Join(t, ", ")
}
