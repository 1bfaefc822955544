//go:build linux

package disk

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/rootfs"
)

// buildMkfs is the writer through e2fsprogs: the tree is extracted into a
// staging directory, copied in by mkfs.ext4 -d, and patched.
func buildMkfs(ctx context.Context, o Options, warnf func(string, ...any), uuid *[16]byte, fixedTime *int64, clamp bool, start time.Time) (*Report, error) {

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

	tmp, err := createTemp(o.Output)
	if err != nil {
		return nil, err
	}
	tmpName := tmp.Name()
	tmp.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmpName)
		}
	}()

	for attempt := 0; ; attempt++ {
		id := ids(tr.digest, o.Label, layout.Size, layout.Inodes, layout.JournalBlocks, t, fileData(file))
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
	if err := commit(tmpName, o.Output, rep, &last); err != nil {
		return nil, err
	}
	done = true
	rep.Elapsed = time.Since(start)
	return rep, nil
}

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

func fileData(f *ext4img.File) []byte {
	if f == nil {
		return nil
	}
	return f.Data
}
