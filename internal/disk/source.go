package disk

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
)

// Source is where the root filesystem comes from.
type Source struct {
	Kind string // "dir" or "tar"
	Path string // "-" is standard input for a tar
}

func (s Source) String() string { return s.Kind + ":" + s.Path }

// ParseSource reads "dir:PATH", "tar:PATH" or "tar:-". A bare "-" is a tar
// on standard input; a bare path is a dir or a tar by what it is.
func ParseSource(s string) (Source, error) {
	if k, p, ok := strings.Cut(s, ":"); ok && (k == "dir" || k == "tar") {
		if p == "" {
			return Source{}, fmt.Errorf("source %q: empty path", s)
		}
		return Source{Kind: k, Path: p}, nil
	}
	if s == "-" {
		return Source{Kind: "tar", Path: "-"}, nil
	}
	fi, err := os.Stat(s)
	if err != nil {
		return Source{}, fmt.Errorf("source %q: %w (sources are dir:PATH, tar:PATH or tar:-)", s, err)
	}
	if fi.IsDir() {
		return Source{Kind: "dir", Path: s}, nil
	}
	return Source{Kind: "tar", Path: s}, nil
}

// openTar opens a tar source, plain or gzip-compressed.
func openTar(src Source, stdin io.Reader) (io.Reader, func() error, error) {
	var r io.Reader
	closer := func() error { return nil }
	name := src.Path
	if src.Path == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		r, name = stdin, "standard input"
	} else {
		f, err := os.Open(src.Path)
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
