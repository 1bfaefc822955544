// Package disk turns a container image or a root filesystem (a directory or
// a flat tar) into an ext4 disk image for ginit, without a loop mount and
// without root.
//
// By default (WriterGo) the layers, bottom first, or the flat tar or
// directory, are read into a tree in memory (package ext4w: whiteouts
// applied, file contents written once, straight to their blocks in a
// temporary image beside the output), the image's config goes in as
// /.ginit/image.json, ext4w writes the file system's metadata around the
// data, and the image is synced and renamed into place.
//
// With WriterMkfs, on Linux, the older steps: an image's layers (package ociimage), bottom first, or a flat
// tar are extracted into a private staging directory (package rootfs:
// whiteouts applied, ownership, modes, device numbers and xattrs go to a
// side table, so none of it needs root); the tree is walked once to size
// the disk and hash it; mkfs.ext4 -d copies the tree into a temporary image
// next to the output; debugfs turns the device placeholders into device
// nodes and sets the xattrs; package ext4img then applies the side table to
// the image's inodes, makes every timestamp reproducible and writes
// /.ginit/image.json; the image is synced and renamed into place.
package disk

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/units"
)

// DefaultFree is the default headroom.
const DefaultFree = 64 << 20

// Options describe one disk to make.
type Options struct {
	Source imagesrc.Source
	Output string
	Label  string // imagespec.RootLabel when empty
	Size   int64  // total size in bytes; 0 sizes automatically
	Free   int64  // free space in an automatically sized disk
	UUID   string // file system UUID; derived from the content when empty
	Config Config // image configuration given on the command line
	// Time stamps the file system and clamps file mtimes; nil takes
	// SOURCE_DATE_EPOCH from the environment, or else the newest mtime
	// in the content (which then clamps nothing).
	Time   *int64
	TmpDir string    // for standard input spooled and the staging tree of WriterMkfs; os.TempDir() when empty
	Stdin  io.Reader // for PATH "-"; os.Stdin when nil
	// MaxLayerSize stops a layer (or a flat tar) that unpacks to more
	// bytes; 0 is imagesrc.DefaultMaxLayerSize, -1 no limit.
	MaxLayerSize int64
	Platform     *v1.Platform                     // picked from a multi-platform image; nil: ociimage.DefaultPlatform
	Keychain     authn.Keychain                   // registry credentials; nil: the Docker config's
	Net          ociimage.Net                     // deadlines, retries and CAs of registry requests
	Progress     imagesrc.Progress                // nil reports nothing
	Warnf        func(format string, args ...any) // nil discards
	// Writer is WriterGo (the default) or WriterMkfs.
	Writer string
}

// Writers of the file system.
const (
	// WriterGo builds the tree in memory and writes the image in Go
	// (package ext4w): no staging tree, no host tool.
	WriterGo = "go"
	// WriterMkfs extracts into a staging directory and runs mkfs.ext4 -d
	// and debugfs (package ext4img), on Linux only.
	WriterMkfs = "mkfs"
)

// Report says what Build made.
type Report struct {
	Output    string
	Size      int64
	Free      int64 // free bytes in the file system
	UUID      string
	Inodes    int64 // inodes of the content
	Bytes     int64 // apparent size of the content's regular files
	ImageJSON bool  // whether the disk has /.ginit/image.json
	Time      int64
	Elapsed   time.Duration
	Phases    []Phase // where the time went
	Image     string  // the image's manifest digest, for an image source
	Layers    int     // layers flattened
	Special   int     // device nodes and inodes with xattrs
}

// Phase is one timed step of Build.
type Phase struct {
	Name string
	Took time.Duration
}

// lap records the time since the last lap as the phase name.
func (r *Report) lap(name string, since *time.Time) {
	now := time.Now()
	r.Phases = append(r.Phases, Phase{name, now.Sub(*since)})
	*since = now
}

// Build makes the disk. On error no file is left at Output, and an
// existing one is untouched.
func Build(ctx context.Context, o Options) (*Report, error) {
	start := time.Now()
	if o.Label == "" {
		o.Label = imagespec.RootLabel
	}
	if len(o.Label) > 16 {
		return nil, fmt.Errorf("label %q: longer than 16 bytes", o.Label)
	}
	warnf := o.Warnf
	if warnf == nil {
		warnf = func(string, ...any) {}
	}
	if o.Size > 0 && o.Size < ext4img.MinSize {
		return nil, fmt.Errorf("size %s: below the minimum of %s", units.Bytes(o.Size), units.Bytes(ext4img.MinSize))
	}
	if err := checkOutput(o.Output); err != nil {
		return nil, err
	}
	var uuid *[16]byte
	if o.UUID != "" {
		u, err := ext4img.ParseUUID(o.UUID)
		if err != nil {
			return nil, err
		}
		uuid = &u
	}
	fixedTime, clamp := o.Time, o.Time != nil
	if fixedTime == nil {
		if s, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && s != "" {
			t, err := strconv.ParseInt(s, 10, 64)
			if err != nil || t < 0 {
				return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", s)
			}
			fixedTime, clamp = &t, true
		}
	}

	if o.Progress == nil {
		o.Progress = imagesrc.NoProgress{}
	}
	if o.MaxLayerSize == 0 {
		o.MaxLayerSize = imagesrc.DefaultMaxLayerSize
	}
	switch o.Writer {
	case WriterGo, "":
		return buildGo(ctx, o, warnf, uuid, fixedTime, clamp, start)
	case WriterMkfs:
		return buildMkfs(ctx, o, warnf, uuid, fixedTime, clamp, start)
	}
	return nil, fmt.Errorf("writer %q: want %s or %s", o.Writer, WriterGo, WriterMkfs)
}

// openImage opens an image source. For an archive that turns out to be a
// flat tar it returns ociimage.ErrFlatTar and the *Image to close.
func openImage(ctx context.Context, o Options, warnf func(string, ...any)) (*ociimage.Image, error) {
	oo := ociimage.Options{Platform: o.Platform, Stdin: o.Stdin, TmpDir: o.TmpDir, Keychain: o.Keychain, Net: o.Net, Warnf: warnf}
	if o.Source.Path == "-" || strings.HasPrefix(o.Source.Path, "-:") {
		o.Progress.Start("reading standard input", -1)
		oo.Spooled = func(n int) { o.Progress.Add(int64(n)) }
		defer o.Progress.Done()
	}
	im, err := ociimage.Open(ctx, o.Source.Kind, o.Source.Path, oo)
	return im, err
}

// ids derives the file system UUID and directory hash seed from the
// content and everything else that shapes the image, so the same input
// gives the same bytes.
func ids(digest [32]byte, label string, size, inodes, journalBlocks, t int64, config []byte) [2][16]byte {
	h := sha256.New()
	h.Write([]byte("oci2disk v1\x00"))
	h.Write(digest[:])
	h.Write([]byte(label + "\x00"))
	binary.Write(h, binary.LittleEndian, []int64{size, inodes, journalBlocks, t})
	h.Write(config)
	seed := h.Sum(nil)
	var out [2][16]byte
	for i, what := range []string{"uuid", "hash_seed"} {
		s := sha256.Sum256(append([]byte(what+"\x00"), seed...))
		copy(out[i][:], s[:16])
		out[i][6] = out[i][6]&0x0f | 0x80 // version 8: custom
		out[i][8] = out[i][8]&0x3f | 0x80 // RFC 9562 variant
	}
	return out
}

// testHookBeforeRename lets tests fail a run once the image exists.
var testHookBeforeRename func(tmp string) error

// createTemp makes the temporary image beside out, to be renamed over it.
func createTemp(out string) (*os.File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary output: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("creating temporary output: %w", err)
	}
	return tmp, nil
}

// commit syncs the finished temporary image and renames it to out.
func commit(tmpName, out string, rep *Report, last *time.Time) error {
	if testHookBeforeRename != nil {
		if err := testHookBeforeRename(tmpName); err != nil {
			return err
		}
	}
	if err := syncFile(tmpName); err != nil {
		return err
	}
	rep.lap("sync", last)
	if err := os.Rename(tmpName, out); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmpName, out, err)
	}
	return syncDir(filepath.Dir(out))
}

// checkOutput refuses an output that is not a regular file or missing.
func checkOutput(out string) error {
	if out == "" {
		return errors.New("no output path")
	}
	fi, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("output: %w", err)
	case fi.IsDir():
		return fmt.Errorf("output %s: is a directory", out)
	case fi.Mode()&fs.ModeDevice != 0:
		return fmt.Errorf("output %s: is a device; oci2disk writes image files only", out)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("output %s: not a regular file", out)
	}
	if fi, err := os.Stat(filepath.Dir(out)); err != nil {
		return fmt.Errorf("output directory: %w", err)
	} else if !fi.IsDir() {
		return fmt.Errorf("output directory %s: not a directory", filepath.Dir(out))
	}
	return nil
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", p, err)
	}
	return f.Close()
}

func syncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", p, err)
	}
	return nil
}
