// Package imagesrc is what the host's disk tool and the machine's pull
// share: the sources an image comes from, reading its layers into a root
// with progress, and nothing that writes a filesystem image, so the images
// that pull at boot carry no host tool's code.
package imagesrc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	gzip "github.com/klauspost/pgzip"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ginit-dev/ginit/internal/ociimage"
)

// Source kinds.
const (
	KindDir           = "dir"                  // a directory holding the root filesystem
	KindTar           = "tar"                  // a flat rootfs tar (docker export), plain or gzip
	KindDocker        = ociimage.Docker        // a registry reference
	KindDockerArchive = ociimage.DockerArchive // docker save output
	KindOCI           = ociimage.OCI           // an OCI image layout directory
	KindOCIArchive    = ociimage.OCIArchive    // an OCI image layout tar
	KindArchive       = ociimage.Archive       // a file or stdin whose kind is found by looking
)

// Source is where the root filesystem comes from.
type Source struct {
	Kind string
	// Path is the directory or file, "-" for standard input, PATH:NAME
	// for an archive or layout holding several images, or the
	// reference for KindDocker.
	Path string
}

func (s Source) String() string {
	if s.Kind == KindDocker {
		return "docker://" + s.Path
	}
	return s.Kind + ":" + s.Path
}

// IsImage reports whether the source is a container image (layers and a
// config) rather than a flat root filesystem.
func (s Source) IsImage() bool { return s.Kind != KindDir && s.Kind != KindTar }

// ParseSource reads "docker://REF", "docker-archive:PATH", "oci:PATH",
// "oci-archive:PATH", "tar:PATH", "dir:PATH", each PATH possibly "-" for
// standard input. A bare "-" is an archive on standard input of any kind;
// a bare path is a directory, an OCI layout or an archive of any kind by
// what it is; anything else is taken as a registry reference.
func ParseSource(s string) (Source, error) {
	if ref, ok := strings.CutPrefix(s, "docker://"); ok {
		if _, err := name.ParseReference(ref); err != nil {
			return Source{}, fmt.Errorf("source %q: %w", s, err)
		}
		return Source{Kind: KindDocker, Path: ref}, nil
	}
	if k, p, ok := strings.Cut(s, ":"); ok {
		switch k {
		case KindDir, KindTar, KindDockerArchive, KindOCI, KindOCIArchive:
			if p == "" {
				return Source{}, fmt.Errorf("source %q: empty path", s)
			}
			if k == KindDir && p == "-" {
				return Source{}, fmt.Errorf("source %q: a directory cannot come from standard input", s)
			}
			return Source{Kind: k, Path: p}, nil
		}
	}
	if s == "-" {
		return Source{Kind: KindArchive, Path: "-"}, nil
	}
	fi, err := os.Stat(s)
	switch {
	case err == nil && fi.IsDir():
		if ociimage.Sniff(s) == ociimage.OCI {
			return Source{Kind: KindOCI, Path: s}, nil
		}
		return Source{Kind: KindDir, Path: s}, nil
	case err == nil:
		return Source{Kind: KindArchive, Path: s}, nil
	case looksLikePath(s):
		return Source{}, fmt.Errorf("source %q: %w (sources: docker://REF, docker-archive:PATH, oci:PATH, oci-archive:PATH, tar:PATH, dir:PATH, -)", s, err)
	}
	if _, rerr := name.ParseReference(s); rerr != nil {
		return Source{}, fmt.Errorf("source %q: neither a file nor an image reference: %w (sources: docker://REF, docker-archive:PATH, oci:PATH, oci-archive:PATH, tar:PATH, dir:PATH, -)", s, err)
	}
	return Source{Kind: KindDocker, Path: s}, nil
}

// looksLikePath: names that are meant as files, never as references.
func looksLikePath(s string) bool {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasPrefix(s, "~") {
		return true
	}
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".gz", ".img", ".json"} {
		if strings.HasSuffix(s, ext) {
			return true
		}
	}
	return false
}

// OpenTar opens a flat tar, plain or gzip-compressed; path "-" is stdin.
func OpenTar(path string, stdin io.Reader) (io.Reader, func() error, error) {
	var r io.Reader
	closer := func() error { return nil }
	name := path
	if path == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		r, name = stdin, "standard input"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		r, closer = f, f.Close
	}
	br := bufio.NewReaderSize(r, 1<<20)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			closer()
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return zr, closer, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		closer()
		return nil, nil, fmt.Errorf("%s: xz-compressed tar not supported: decompress it first (xz -dc FILE | oci2disk tar:- ...)", name)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		closer()
		return nil, nil, fmt.Errorf("%s: zstd-compressed tar not supported: decompress it first (zstd -dc FILE | oci2disk tar:- ...)", name)
	case bytes.HasPrefix(magic, []byte("BZh")):
		closer()
		return nil, nil, fmt.Errorf("%s: bzip2-compressed tar not supported: decompress it first", name)
	}
	return br, closer, nil
}
