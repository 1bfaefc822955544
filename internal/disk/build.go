// Package disk turns a container image or a root filesystem (a directory or
// a flat tar) into an ext4 disk image for ginit, without a loop mount and
// without root.
//
// The steps: an image's layers (package ociimage), bottom first, or a flat
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
	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/rootfs"
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
	TmpDir string    // staging directory parent; os.TempDir() when empty
	Stdin  io.Reader // for PATH "-"; os.Stdin when nil
	// MaxLayerSize stops a layer (or a flat tar) that unpacks to more
	// bytes; 0 is imagesrc.DefaultMaxLayerSize, -1 no limit.
	MaxLayerSize int64
	Platform     *v1.Platform                     // picked from a multi-platform image; nil: ociimage.DefaultPlatform
	Keychain     authn.Keychain                   // registry credentials; nil: the Docker config's
	Net          ociimage.Net                     // deadlines, retries and CAs of registry requests
	Progress     imagesrc.Progress                // nil reports nothing
	Warnf        func(format string, args ...any) // nil discards
}

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
	Special   int     // device nodes and inodes with xattrs made by debugfs
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

	rep := &Report{Output: o.Output}
	last := start
	st, cleanup, err := prepare(ctx, o, warnf, rep)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return nil, err
	}
	root, metas := st.root, st.metas
	if metas != nil {
		rep.lap("extract", &last)
	}
	var seed []byte
	if st.config != nil {
		c := sha256.Sum256(st.config)
		seed = append([]byte("image config "), c[:]...)
	}
	tr, err := scanTree(ctx, root, metas, seed, st.config == nil)
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", root, err)
	}
	rep.lap("scan", &last)
	rep.Special = len(tr.special)
	if fixedTime == nil && st.created != nil {
		fixedTime = st.created
	}
	if metas == nil && os.Geteuid() != 0 {
		if n := tr.ownedBy[uint32(os.Geteuid())]; n > 0 && os.Geteuid() != 0 {
			warnf("%d files of %s are owned by uid %d (you) and keep that owner in the disk; extract the tree as root or give a tar to keep the image's ownership", n, o.Source.Path, os.Geteuid())
		}
	}
	t := tr.maxMtime
	if fixedTime != nil {
		t = *fixedTime
	}
	rep.Time, rep.Inodes, rep.Bytes = t, tr.content.Inodes, tr.bytes

	var file *ext4img.File
	if o.Config.Any() || st.config != nil {
		file, err = imageConfigFile(root, &o.Config, st.config, t)
		if err != nil {
			return nil, err
		}
		rep.ImageJSON = true
	} else if p, err := rootfs.Resolve(root, imagespec.ConfigPath); err == nil {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			rep.ImageJSON = true
		}
	}
	content := tr.content
	if file != nil {
		content.Inodes += 2
		content.Blocks += 2 + int64(len(file.Data))/ext4img.BlockSize
	}

	var layout ext4img.Layout
	if o.Size > 0 {
		if layout, err = ext4img.FixedLayout(content, o.Size); err != nil {
			return nil, err
		}
	} else {
		layout = ext4img.AutoLayout(content, o.Free)
	}

	tmp, err := os.CreateTemp(filepath.Dir(o.Output), filepath.Base(o.Output)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary output: %w", err)
	}
	tmpName := tmp.Name()
	err = tmp.Chmod(0o644)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmpName)
		return nil, fmt.Errorf("creating temporary output: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.Remove(tmpName)
		}
	}()

	for attempt := 0; ; attempt++ {
		id := ids(tr.digest, o.Label, layout, t, file)
		p := ext4img.Params{Dir: root, Layout: layout, Label: o.Label, UUID: id[0], HashSeed: id[1], Time: t}
		if uuid != nil {
			p.UUID = *uuid
		}
		err := make1(ctx, tmpName, p, metas, tr, clamp, file, o.Progress, rep, &last)
		if errors.Is(err, ext4img.ErrNoSpace) && o.Size == 0 && attempt < 2 {
			layout = ext4img.AutoLayout(ext4img.Content{Inodes: content.Inodes, Blocks: content.Blocks*5/4 + 4096}, o.Free)
			continue
		}
		if err != nil {
			return nil, err
		}
		sb, err := ext4img.ReadSuperblock(tmpName)
		if err != nil {
			return nil, err
		}
		free := sb.FreeBlocks * sb.BlockSize
		if o.Size == 0 && free < o.Free && attempt < 2 {
			// The estimate was short: grow by what was missing.
			layout = ext4img.AutoLayout(ext4img.Content{Inodes: content.Inodes, Blocks: content.Blocks + (o.Free-free)/ext4img.BlockSize + 256}, o.Free)
			continue
		}
		rep.Size, rep.Free, rep.UUID = layout.Size, free, ext4img.FormatUUID(sb.UUID)
		break
	}
	if testHookBeforeRename != nil {
		if err := testHookBeforeRename(tmpName); err != nil {
			return nil, err
		}
	}
	if err := syncFile(tmpName); err != nil {
		return nil, err
	}
	rep.lap("sync", &last)
	if err := os.Rename(tmpName, o.Output); err != nil {
		return nil, fmt.Errorf("renaming %s to %s: %w", tmpName, o.Output, err)
	}
	done = true
	if err := syncDir(filepath.Dir(o.Output)); err != nil {
		return nil, err
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// testHookBeforeRename lets tests fail a run once the image exists.
var testHookBeforeRename func(tmp string) error

// make1 runs mkfs.ext4 and the fix-ups on the temporary image.
func make1(ctx context.Context, img string, p ext4img.Params, metas *rootfs.Result, tr *tree, clamp bool, file *ext4img.File, prog imagesrc.Progress, rep *Report, last *time.Time) error {
	hasLF := tr.hasLF
	stop := watchWrite(img, tr.content.Blocks*ext4img.BlockSize, prog)
	err := ext4img.Make(ctx, img, p)
	stop()
	if err != nil {
		return err
	}
	rep.lap("mkfs.ext4", last)
	if err := ext4img.MakeSpecial(ctx, img, tr.special, p.Time); err != nil {
		return err
	}
	sb, err := ext4img.ReadSuperblock(img)
	if err != nil {
		return err
	}
	lostFound := sb.FirstIno // mkfs.ext4 makes lost+found first
	t := p.Time
	faked := ext4img.Time{Sec: max(t, 1)} // what mkfs.ext4 wrote for "now"
	err = ext4img.Patch(img, func(ino uint32, a *ext4img.Attrs) error {
		staged := ino > lostFound || ino == lostFound && hasLF
		if !staged {
			for _, x := range []*ext4img.Time{&a.Atime, &a.Ctime, &a.Mtime, &a.Crtime} {
				if *x == faked {
					*x = ext4img.Time{Sec: t}
				}
			}
			return nil
		}
		if metas != nil {
			m, ok := metas.MetaFor(a.Atime.Sec)
			if !ok {
				return fmt.Errorf("no staging marker (atime %d)", a.Atime.Sec)
			}
			a.UID, a.GID = uint32(m.UID), uint32(m.GID)
			if a.Mode&unix.S_IFMT != unix.S_IFLNK {
				a.Mode = a.Mode&unix.S_IFMT | uint16(m.Perm&0o7777)
			}
			a.Mtime = ext4img.Time{Sec: m.Mtime}
		}
		if clamp && a.Mtime.Sec > t {
			a.Mtime = ext4img.Time{Sec: t}
		}
		a.Atime, a.Ctime, a.Crtime = a.Mtime, a.Mtime, ext4img.Time{Sec: t}
		return nil
	})
	if err != nil {
		return err
	}
	if file != nil {
		if err := ext4img.WriteFile(ctx, img, *file); err != nil {
			return err
		}
	}
	if err := ext4img.SetSuperblockTimes(img, t); err != nil {
		return err
	}
	rep.lap("patch", last)
	return nil
}

// staged is the tree to copy and what came with it.
type staged struct {
	root    string
	metas   *rootfs.Result // nil for a directory source
	config  []byte         // the image's config document, for an image source
	created *int64         // the image's creation time, if it has one
}

// prepare returns the tree to copy: the source directory itself, or a
// staging directory with the tar or the image's layers extracted into it.
func prepare(ctx context.Context, o Options, warnf func(string, ...any), rep *Report) (*staged, func(), error) {
	switch o.Source.Kind {
	case imagesrc.KindDir:
		fi, err := os.Stat(o.Source.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("source: %w", err)
		}
		if !fi.IsDir() {
			return nil, nil, fmt.Errorf("source %s: not a directory", o.Source.Path)
		}
		return &staged{root: o.Source.Path}, nil, nil
	case imagesrc.KindTar, imagesrc.KindDocker, imagesrc.KindDockerArchive, imagesrc.KindOCI, imagesrc.KindOCIArchive, imagesrc.KindArchive:
	default:
		return nil, nil, fmt.Errorf("source %q: unknown kind %q", o.Source, o.Source.Kind)
	}
	var cleanups []func()
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	staging, err := os.MkdirTemp(o.TmpDir, "oci2disk-rootfs-")
	if err != nil {
		return nil, nil, fmt.Errorf("creating staging directory: %w", err)
	}
	cleanups = append(cleanups, func() { os.RemoveAll(staging) })
	st := &staged{root: staging}
	x := rootfs.NewExtractor(staging, rootfs.Options{MaxBytes: max(o.MaxLayerSize, 0), Warnf: warnf})

	flat := ""
	if o.Source.Kind == imagesrc.KindTar {
		flat = o.Source.Path
	} else {
		im, err := openImage(ctx, o, warnf)
		if im != nil {
			cleanups = append(cleanups, func() { im.Close() })
		}
		switch {
		case errors.Is(err, ociimage.ErrFlatTar):
			flat = im.Spool
		case err != nil:
			return nil, cleanup, err
		default:
			if err := imagesrc.ExtractLayers(ctx, x, im, o.Progress); err != nil {
				return nil, cleanup, err
			}
			st.config = im.RawConfig
			if t, ok := im.Created(); ok {
				st.created = &t
			}
			rep.Image, rep.Layers = im.Digest, len(im.Layers)
		}
	}
	if flat != "" {
		r, closeTar, err := imagesrc.OpenTar(flat, o.Stdin)
		if err != nil {
			return nil, cleanup, fmt.Errorf("source: %w", err)
		}
		o.Progress.Start("extracting "+o.Source.String(), -1)
		err = x.Apply(ctx, r, false)
		closeTar()
		o.Progress.Done()
		if err != nil {
			return nil, cleanup, fmt.Errorf("extracting %s: %w", o.Source, err)
		}
	}
	if st.metas, err = x.Finish(); err != nil {
		return nil, cleanup, fmt.Errorf("extracting %s: %w", o.Source, err)
	}
	return st, cleanup, nil
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

// watchWrite reports the growth of the image file img, whose content is
// about total bytes, while mkfs.ext4 fills it.
func watchWrite(img string, total int64, prog imagesrc.Progress) (stop func()) {
	if _, ok := prog.(imagesrc.NoProgress); ok {
		return func() {}
	}
	prog.Start("writing the file system", total)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var shown int64
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			var st unix.Stat_t
			if unix.Stat(img, &st) == nil {
				if n := min(st.Blocks*512, total); n > shown {
					prog.Add(n - shown)
					shown = n
				}
			}
			select {
			case <-done:
				if shown < total {
					prog.Add(total - shown)
				}
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		prog.Done()
	}
}

// imageConfigFile builds /.ginit/image.json from the flags and the image's
// config document, or else whatever document the tree already has, and says
// how to put it in the disk. An image's document without flags goes in
// byte for byte.
func imageConfigFile(root string, c *Config, imageConfig []byte, t int64) (*ext4img.File, error) {
	f := &ext4img.File{Path: imagespec.ConfigPath, Perm: 0o644, Time: t}
	dirHost := filepath.Join(root, ".ginit")
	switch fi, err := os.Lstat(dirHost); {
	case errors.Is(err, fs.ErrNotExist):
		f.MakeDir = true
	case err != nil:
		return nil, err
	case !fi.IsDir():
		return nil, fmt.Errorf("%s: /.ginit in the source is not a directory", dirHost)
	}
	var existing []byte
	if !f.MakeDir {
		host := filepath.Join(dirHost, "image.json")
		switch fi, err := os.Lstat(host); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		case fi.IsDir():
			return nil, fmt.Errorf("%s: is a directory", host)
		default:
			f.Overwrite = true
			if imageConfig != nil {
				break
			}
			if p, err := rootfs.Resolve(root, imagespec.ConfigPath); err == nil {
				if existing, err = os.ReadFile(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("reading the source's %s: %w", imagespec.ConfigPath, err)
				}
			}
		}
	}
	if imageConfig != nil {
		if !c.Any() {
			f.Data = imageConfig
			return f, nil
		}
		existing = imageConfig
	}
	data, err := c.Apply(existing)
	if err != nil {
		return nil, err
	}
	f.Data = data
	return f, nil
}

// ids derives the file system UUID and directory hash seed from the
// content and everything else that shapes the image, so the same input
// gives the same bytes.
func ids(digest [32]byte, label string, l ext4img.Layout, t int64, file *ext4img.File) [2][16]byte {
	h := sha256.New()
	h.Write([]byte("oci2disk v1\x00"))
	h.Write(digest[:])
	h.Write([]byte(label + "\x00"))
	binary.Write(h, binary.LittleEndian, []int64{l.Size, l.Inodes, l.JournalBlocks, t})
	if file != nil {
		h.Write(file.Data)
	}
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
