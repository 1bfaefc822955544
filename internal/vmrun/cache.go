package vmrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/disk"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/ociimage"
)

// ImageInfo is image.json: what a cached base disk was made from.
type ImageInfo struct {
	Key      string    `json:"key"`
	Source   string    `json:"source"` // the source it was converted from
	Size     int64     `json:"size"`   // of disk.img
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
}

// keyOf turns a digest ("sha256:HEX") into a key, a name for a directory.
func keyOf(digest string) string { return strings.Replace(digest, ":", "-", 1) }

// ImageKey returns the cache key of src and the source to convert, which
// is pinned to the key where the source can move: a registry reference
// becomes REPO@DIGEST, so a tag pushed meanwhile cannot slip in. The key
// is the manifest digest for a registry, oci and oci-archive image; for a
// docker-archive, which has no manifest, the digest of its configuration
// (docker's image ID, which names every layer by its digest); for tar:,
// dir: and a flat tar found by looking, a sha256 of the input. Nothing is
// converted.
func ImageKey(ctx context.Context, src imagesrc.Source) (string, imagesrc.Source, error) {
	if p, _, _ := strings.Cut(src.Path, ":"); p == "-" && src.Kind != imagesrc.KindDocker {
		return "", src, fmt.Errorf("image %s: standard input cannot be cached; save it to a file", src)
	}
	switch src.Kind {
	case imagesrc.KindDir:
		k, err := hashDir(src.Path)
		return k, src, err
	case imagesrc.KindTar:
		k, err := hashFile(src.Path)
		return k, src, err
	}
	im, err := ociimage.Open(ctx, src.Kind, src.Path, ociimage.Options{})
	if errors.Is(err, ociimage.ErrFlatTar) {
		im.Close()
		k, err := hashFile(src.Path)
		return k, imagesrc.Source{Kind: imagesrc.KindTar, Path: src.Path}, err
	}
	if err != nil {
		return "", src, fmt.Errorf("image: %w", err) // ociimage's errors name the source
	}
	defer im.Close()
	digest := im.Digest
	if digest == "" {
		sum := sha256.Sum256(im.RawConfig)
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	if src.Kind == imagesrc.KindDocker {
		ref, err := name.ParseReference(src.Path)
		if err != nil {
			return "", src, fmt.Errorf("image %s: %w", src, err)
		}
		src.Path = ref.Context().Digest(digest).String()
	}
	return keyOf(digest), src, nil
}

// hashFile is the key of a file's content.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("image %s: %w", path, err)
	}
	return "sha256-" + hex.EncodeToString(h.Sum(nil)), nil
}

// hashDir is the key of a directory tree: every entry's name, mode,
// owner, modification time and size, a link's target and a file's
// content, in the walk's (lexical) order; what the disk would hold.
func hashDir(root string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var uid, gid uint32
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = st.Uid, st.Gid
		}
		fmt.Fprintf(h, "%q %o %d:%d %d %d", rel, fi.Mode(), uid, gid, fi.ModTime().UnixNano(), fi.Size())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, " -> %q", target)
		case fi.Mode().IsRegular():
			if err := hashContent(h, path); err != nil {
				return err
			}
		}
		h.Write([]byte{'\n'})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("image dir:%s: %w", root, err)
	}
	return "sha256-" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashContent(h hash.Hash, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(h, f)
	return err
}

// lockImages takes the images directory's lock: shared while a run takes
// a base for its VM (until its vm.json names the base), exclusive while
// prune decides which bases no VM uses. unlock releases it.
func (s State) lockImages(how int) (unlock func(), err error) {
	if err := os.MkdirAll(s.Images(), 0o700); err != nil {
		return nil, fmt.Errorf("images directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.Images(), ".lock"), os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("images lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("images lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// Base returns the cached base disk for key, converting src into it on
// the first use: into a temporary directory under images/, renamed into
// place when complete, so a base is whole or absent, and when two first
// runs of an image race, each makes one, one rename wins, and both use
// the winner's. converted says whether this call made it.
func (s State) Base(ctx context.Context, key string, src imagesrc.Source) (dir ImageDir, converted bool, err error) {
	dir = s.Image(key)
	if _, err := os.Stat(dir.Disk()); err == nil {
		return dir, false, touchImage(dir)
	}
	tmp, err := os.MkdirTemp(s.Images(), ".new-")
	if err != nil {
		return "", false, fmt.Errorf("images directory: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	base := ImageDir(tmp)
	rep, err := disk.Build(ctx, disk.Options{Source: src, Output: base.Disk(), TmpDir: tmp})
	if err != nil {
		return "", false, fmt.Errorf("disk from %s: %w", src, err)
	}
	// The base is shared: no VM writes it, QEMU opens it read-only.
	if err := os.Chmod(base.Disk(), 0o444); err != nil {
		return "", false, err
	}
	now := time.Now().UTC()
	if err := writeJSON(base.Info(), ImageInfo{Key: key, Source: src.String(), Size: rep.Size, Created: now, LastUsed: now}, 0o600); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp, string(dir)); err != nil {
		if _, serr := os.Stat(dir.Disk()); serr == nil {
			return dir, false, touchImage(dir) // another run made it first
		}
		return "", false, fmt.Errorf("image cache: %w", err)
	}
	return dir, true, nil
}

// touchImage records that a run used the base.
func touchImage(dir ImageDir) error {
	var info ImageInfo
	if err := readJSON(dir.Info(), &info); err != nil {
		return err
	}
	info.LastUsed = time.Now().UTC()
	return writeJSON(dir.Info(), info, 0o600)
}

// writeJSON writes v to path atomically: a reader sees the old file or
// the new one, never a part.
func writeJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), perm)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
