package ociimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/pgzip"
)

// Transports, named as skopeo names them.
const (
	Docker        = "docker"         // a registry reference
	DockerArchive = "docker-archive" // `docker save` output
	OCI           = "oci"            // an OCI image layout directory
	OCIArchive    = "oci-archive"    // an OCI image layout in a tar
	Archive       = "archive"        // an archive of a kind found by looking: docker-archive, oci-archive or a flat rootfs tar
)

// DefaultPlatform is the platform picked from a multi-platform image and
// recorded in a new one: Linux on the architecture this program runs on,
// the one default every command shares.
func DefaultPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// Options tune Open.
type Options struct {
	Platform *v1.Platform   // nil: DefaultPlatform
	Stdin    io.Reader      // for PATH "-"; os.Stdin when nil
	TmpDir   string         // where standard input is spooled; os.TempDir() when empty
	Keychain authn.Keychain // registry credentials; authn.DefaultKeychain when nil
	Net      Net            // deadlines, retries and CAs of registries and HTTP layouts
	Warnf    func(string, ...any)
	// Spooled, when not nil, is told the bytes of standard input copied
	// to the spool file so far, for progress.
	Spooled func(n int)
}

func (o Options) platform() v1.Platform {
	if o.Platform != nil {
		return *o.Platform
	}
	return DefaultPlatform()
}

// ErrFlatTar: an archive found by looking is a plain rootfs tar, not an
// image; the caller handles those.
var ErrFlatTar = errors.New("a flat rootfs tar, not an image archive")

// Open opens the image that transport and arg name: for docker, arg is a
// reference; for the others it is PATH or PATH:NAME (a tag in a
// docker-archive, a ref.name annotation in an OCI layout), with PATH "-"
// for standard input. For Archive a flat tar gives ErrFlatTar and, in
// *Image.Spool, the spooled file when it came from standard input.
func Open(ctx context.Context, transport, arg string, o Options) (*Image, error) {
	if transport == Docker {
		return openRemote(ctx, arg, o)
	}
	if transport == OCI && isURL(arg) {
		base, ref := splitURLRef(arg)
		return openLayout(newHTTPStore(base, o.Net), transport+":"+arg, ref, o.platform())
	}
	p, ref := splitRef(arg)
	var cleanup []func() error
	closeAll := func() error {
		var errs []error
		for i := len(cleanup) - 1; i >= 0; i-- {
			errs = append(errs, cleanup[i]())
		}
		return errors.Join(errs...)
	}
	label := transport + ":" + arg
	if p == "-" {
		spool, err := spoolStdin(ctx, o)
		if err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() error { return os.Remove(spool) })
		p = spool
		label = transport + ":(standard input)"
	}
	im, err := openPath(transport, p, ref, label, o, &cleanup)
	if err != nil {
		if errors.Is(err, ErrFlatTar) {
			return &Image{Name: label, Spool: p, close: closeAll}, err
		}
		closeAll()
		return nil, err
	}
	im.close = closeAll
	return im, nil
}

func openPath(transport, p, ref, label string, o Options, cleanup *[]func() error) (*Image, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	if fi.IsDir() {
		switch transport {
		case OCI, Archive:
			return openLayout(dirStore{p}, label, ref, o.platform())
		case DockerArchive:
			return openDockerArchive(dirStore{p}, label, ref)
		}
		return nil, fmt.Errorf("%s: is a directory; an %s is a tar file", label, transport)
	}
	if isGzip(p) {
		if transport == Archive {
			if kind, err := sniffGzip(p); err != nil || kind == "" {
				return nil, ErrFlatTar
			}
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		spool, err := spool(context.Background(), f, o)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		*cleanup = append(*cleanup, func() error { return os.Remove(spool) })
		p = spool
	}
	ts, err := openTarStore(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	*cleanup = append(*cleanup, ts.Close)
	switch transport {
	case OCI, OCIArchive:
		return openLayout(ts, label, ref, o.platform())
	case DockerArchive:
		return openDockerArchive(ts, label, ref)
	case Archive:
		switch {
		case ts.has("manifest.json"):
			return openDockerArchive(ts, label, ref)
		case ts.has("oci-layout"):
			return openLayout(ts, label, ref, o.platform())
		}
		return nil, ErrFlatTar
	}
	return nil, fmt.Errorf("unknown transport %q", transport)
}

// splitRef splits PATH:NAME. A PATH that exists as given, or "-", is taken
// whole.
func splitRef(arg string) (string, string) {
	if arg == "-" {
		return arg, ""
	}
	if _, err := os.Lstat(arg); err == nil {
		return arg, ""
	}
	// The name may hold colons too (docker-archive:a.tar:registry:5000/app:1):
	// the path is the shortest prefix that exists.
	for i := 0; i < len(arg); i++ {
		if arg[i] != ':' {
			continue
		}
		if _, err := os.Lstat(arg[:i]); err == nil || arg[:i] == "-" {
			return arg[:i], arg[i+1:]
		}
	}
	return arg, ""
}

// spoolStdin copies standard input to a private temporary file: archives
// are read out of order. A gzip stream is decompressed on the way.
func spoolStdin(ctx context.Context, o Options) (string, error) {
	in := o.Stdin
	if in == nil {
		in = os.Stdin
	}
	p, err := spool(ctx, in, o)
	if err != nil {
		return "", fmt.Errorf("standard input: %w", err)
	}
	return p, nil
}

// spool copies in, decompressed if it is gzip, to a temporary file.
func spool(ctx context.Context, in io.Reader, o Options) (string, error) {
	f, err := os.CreateTemp(o.TmpDir, "oci2disk-stdin-*.tar")
	if err != nil {
		return "", fmt.Errorf("spooling: %w", err)
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(f.Name())
		}
	}()
	br := bufio.NewReaderSize(in, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := newGzip(br)
		if err != nil {
			return "", fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return "", fmt.Errorf("spooling to %s: %w", f.Name(), err)
			}
			if o.Spooled != nil {
				o.Spooled(n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", fmt.Errorf("reading: %w", rerr)
		}
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("spooling to %s: %w", f.Name(), err)
	}
	ok = true
	return f.Name(), nil
}

func isGzip(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 2)
	n, _ := io.ReadFull(f, magic)
	return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b
}

func newGzip(r io.Reader) (io.ReadCloser, error) { return pgzip.NewReader(r) }

// Sniff says what the file or directory at p is: DockerArchive,
// OCIArchive, OCI (a layout directory), or "" for anything else (a flat
// tar, plain or gzip, a plain directory).
func Sniff(p string) string {
	fi, err := os.Stat(p)
	if err != nil {
		return ""
	}
	if fi.IsDir() {
		if _, err := os.Stat(path.Join(p, "oci-layout")); err == nil {
			return OCI
		}
		return ""
	}
	if isGzip(p) {
		kind, _ := sniffGzip(p)
		return kind
	}
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	return sniffTar(f)
}

func sniffGzip(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := pgzip.NewReader(f)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	return sniffTar(zr), nil
}

// sniffTar looks for the members that make an image archive. A docker
// save archive may hold an OCI layout too: manifest.json wins.
func sniffTar(r io.Reader) string {
	tr := tar.NewReader(r)
	kind := ""
	for {
		hdr, err := tr.Next()
		if err != nil {
			return kind
		}
		n, _ := cleanMember(hdr.Name)
		switch n {
		case "manifest.json":
			return DockerArchive
		case "oci-layout":
			kind = OCIArchive
		}
	}
}
