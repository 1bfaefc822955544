// Package ociimage reads container images for oci2disk: from a registry
// (through go-containerregistry, with the Docker credential keychain), a
// `docker save` archive, an OCI image layout directory or archive, each of
// them also from standard input. It gives the image configuration exactly
// as the image carries it and its layers as uncompressed tar streams.
//
// Every blob is checked against its digest: the manifest and configuration
// when they are read, each layer's blob and its uncompressed tar (the
// config's diff_ids) as the stream reaches its end. A layer's tar is read
// while it downloads, so a bad digest is noticed only at the end of the
// layer: the caller must call LayerReader.Verify before it trusts what it
// extracted.
package ociimage

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// ErrDigest: a blob's content does not match its digest.
var ErrDigest = errors.New("digest mismatch")

// Image is one image, ready to flatten.
type Image struct {
	// Name says where the image came from, for messages.
	Name string
	// Digest is the manifest's digest, when the source has a manifest
	// (not for a docker-archive).
	Digest string
	// RawConfig is the OCI image configuration document, byte for byte.
	RawConfig []byte
	// Config is RawConfig parsed.
	Config *v1.ConfigFile
	// Layers are the filesystem layers, bottom first.
	Layers []*Layer
	// Spool is set with ErrFlatTar from Open: the flat tar, a temporary
	// copy of standard input or the file given; Close removes a copy.
	Spool string
	close func() error
}

// Close releases what Open holds (spooled input, open archives).
func (im *Image) Close() error {
	if im.close == nil {
		return nil
	}
	c := im.close
	im.close = nil
	return c()
}

// Created returns the image's creation time in seconds, if it has one.
func (im *Image) Created() (int64, bool) {
	if im.Config == nil || im.Config.Created.IsZero() || im.Config.Created.Unix() < 0 || im.Config.Created.Unix() >= 1<<34 {
		return 0, false
	}
	return im.Config.Created.Unix(), true
}

// Layer is one filesystem layer.
type Layer struct {
	Index     int     // 0 for the bottom layer
	Digest    v1.Hash // of the blob as stored; zero when the source does not say
	DiffID    v1.Hash // of the uncompressed tar, from the config
	Size      int64   // of the blob; -1 when unknown
	MediaType string
	open      func() (io.ReadCloser, error)
}

func (l *Layer) String() string {
	d := l.Digest
	if d.Hex == "" {
		d = l.DiffID
	}
	return fmt.Sprintf("layer %d (%s)", l.Index+1, short(d))
}

func short(h v1.Hash) string {
	s := h.String()
	if len(s) > 19 {
		return s[:19]
	}
	return s
}

// Open opens the layer's uncompressed tar stream. onRead, when not nil, is
// told the size of each read of the blob (compressed bytes), for progress.
func (l *Layer) Open(onRead func(n int)) (*LayerReader, error) {
	if strings.Contains(l.MediaType, "foreign") || strings.Contains(l.MediaType, "nondistributable") {
		return nil, fmt.Errorf("%s: %s layers are not supported", l, l.MediaType)
	}
	rc, err := l.open()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	lr := &LayerReader{l: l, blob: rc, blobHash: sha256.New(), diffHash: sha256.New(), onRead: onRead}
	if l.Digest.Algorithm != "" && l.Digest.Algorithm != "sha256" {
		rc.Close()
		return nil, fmt.Errorf("%s: digest algorithm %q not supported", l, l.Digest.Algorithm)
	}
	if l.DiffID.Algorithm != "sha256" {
		rc.Close()
		return nil, fmt.Errorf("%s: diff_id algorithm %q not supported", l, l.DiffID.Algorithm)
	}
	lr.counted = bufio.NewReaderSize(io.TeeReader(&countReader{r: rc, f: onRead}, lr.blobHash), 1<<16)
	magic, err := lr.counted.Peek(6)
	if err != nil && err != io.EOF {
		rc.Close()
		return nil, fmt.Errorf("%s: reading: %w", l, err)
	}
	var plain io.Reader
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := pgzip.NewReader(lr.counted)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("%s: gzip: %w", l, err)
		}
		plain, lr.unzip = zr, zr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(lr.counted, zstd.WithDecoderConcurrency(1))
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("%s: zstd: %w", l, err)
		}
		plain, lr.unzip = zr, closerFunc(func() error { zr.Close(); return nil })
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}), bytes.HasPrefix(magic, []byte("BZh")):
		rc.Close()
		return nil, fmt.Errorf("%s: compression (xz or bzip2) not supported in image layers", l)
	default:
		plain = lr.counted
	}
	lr.plain = io.TeeReader(plain, lr.diffHash)
	return lr, nil
}

// LayerReader is a layer's uncompressed tar stream.
type LayerReader struct {
	l        *Layer
	blob     io.ReadCloser
	counted  *bufio.Reader
	unzip    io.Closer
	plain    io.Reader
	blobHash hash.Hash
	diffHash hash.Hash
	onRead   func(int)
}

func (r *LayerReader) Read(p []byte) (int, error) { return r.plain.Read(p) }

// Verify reads the rest of the stream and checks the blob's digest and
// the tar's diff_id. Call it once the tar reader is done.
func (r *LayerReader) Verify() error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("reading to the end: %w", err)
	}
	// Whatever follows the compressed stream counts for the blob digest.
	if _, err := io.Copy(io.Discard, r.counted); err != nil {
		return fmt.Errorf("reading to the end: %w", err)
	}
	if want := r.l.Digest; want.Hex != "" {
		if got := hex.EncodeToString(r.blobHash.Sum(nil)); got != want.Hex {
			return fmt.Errorf("blob is sha256:%s, the manifest says %s: %w", got, want, ErrDigest)
		}
	}
	if got, want := hex.EncodeToString(r.diffHash.Sum(nil)), r.l.DiffID; got != want.Hex {
		return fmt.Errorf("uncompressed tar is sha256:%s, the config's diff_id says %s: %w", got, want, ErrDigest)
	}
	return nil
}

// Close releases the stream.
func (r *LayerReader) Close() error {
	if r.unzip != nil {
		r.unzip.Close()
	}
	return r.blob.Close()
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// countReader counts what it reads, and names a registry client's failed
// check of a blob's digest or size ErrDigest.
type countReader struct {
	r io.Reader
	f func(int)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.f != nil {
		c.f(n)
	}
	if err != nil && err != io.EOF && strings.HasPrefix(err.Error(), "error verifying") {
		err = fmt.Errorf("%v: %w", err, ErrDigest)
	}
	return n, err
}

// checkBlob checks data against digest d.
func checkBlob(what string, data []byte, d v1.Hash) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("%s: digest algorithm %q not supported", what, d.Algorithm)
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != d.Hex {
		return fmt.Errorf("%s: content is sha256:%x, expected %s: %w", what, got, d, ErrDigest)
	}
	return nil
}

// parseConfig parses the image configuration and pairs its diff_ids with
// the layers.
func parseConfig(im *Image, layers int) error {
	var cfg v1.ConfigFile
	if err := json.Unmarshal(im.RawConfig, &cfg); err != nil {
		return fmt.Errorf("%s: image config: %w", im.Name, err)
	}
	im.Config = &cfg
	if cfg.RootFS.Type != "" && cfg.RootFS.Type != "layers" {
		return fmt.Errorf("%s: image config: rootfs type %q, want \"layers\"", im.Name, cfg.RootFS.Type)
	}
	if len(cfg.RootFS.DiffIDs) != layers {
		return fmt.Errorf("%s: the manifest lists %d layers, the config %d diff_ids", im.Name, layers, len(cfg.RootFS.DiffIDs))
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return fmt.Errorf("%s: image is for %q, not linux", im.Name, cfg.OS)
	}
	return nil
}

// maxMeta bounds the manifests, indexes and configs read into memory.
const maxMeta = 16 << 20

func readAllLimited(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxMeta+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if len(b) > maxMeta {
		return nil, fmt.Errorf("%s: larger than %d bytes", what, maxMeta)
	}
	return b, nil
}
