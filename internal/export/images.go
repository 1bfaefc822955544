// Package export makes ginit's artifacts in the forms that VM engines
// consume: KubeVirt's containerDisk and kernel-boot images and its
// VirtualMachine, a job for Nomad's qemu task driver, and a Tinkerbell
// Hardware object with its iPXE script. It writes no scheduler: each engine
// runs the artifacts as it runs any other, and ginit's exit status reaches
// it in its own terms (see Status).
package export

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/ociimage"
)

// What KubeVirt expects inside its images. A containerDisk holds one disk
// image under /disk/, readable by virt-launcher's qemu user (107); the
// kernel-boot image's paths are the VirtualMachine's kernelPath and
// initrdPath.
const (
	DiskDir    = "disk"
	DiskFile   = "disk.img"
	QEMUUID    = 107
	DiskMode   = 0o440
	KernelPath = "/boot/vmlinuz"
	InitrdPath = "/boot/initramfs"
	bootMode   = 0o444
)

// file is one file of an image layer: its host source and its place and
// metadata in the image.
type file struct {
	src      string
	name     string // in the image, without a leading slash
	uid, gid int
	mode     int64
}

// ContainerDisk makes KubeVirt's containerDisk image of a raw disk: FROM
// scratch, one layer holding /disk/disk.img owned 107:107 mode 0440,
// linux/amd64. created stamps the image and the files, so the same disk
// gives the same image.
func ContainerDisk(disk string, created time.Time) (v1.Image, error) {
	return imageOf(created, "ginit containerDisk", file{src: disk, name: DiskDir + "/" + DiskFile, uid: QEMUUID, gid: QEMUUID, mode: DiskMode})
}

// KernelBoot makes the image KubeVirt's kernelBoot container names: the
// kernel at KernelPath and ginit's initramfs at InitrdPath.
func KernelBoot(kernel, initrd string, created time.Time) (v1.Image, error) {
	return imageOf(created, "ginit kernel boot",
		file{src: kernel, name: strings.TrimPrefix(KernelPath, "/"), mode: bootMode},
		file{src: initrd, name: strings.TrimPrefix(InitrdPath, "/"), mode: bootMode})
}

func imageOf(created time.Time, history string, files ...file) (v1.Image, error) {
	for _, f := range files {
		fi, err := os.Stat(f.src)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("export: %s: not a regular file", f.src)
		}
	}
	open := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(pw, created, files)) }()
		return pr, nil
	}
	layer, err := ociimage.NewLayer(open, "gzip")
	if err != nil {
		return nil, fmt.Errorf("export: layer: %w", err)
	}
	return ociimage.FromLayers([]v1.Layer{layer}, ociimage.Spec{Created: created, History: history,
		Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
}

// writeTar writes files, with their parent directories (root-owned,
// 0555), as one tar stream.
func writeTar(w io.Writer, t time.Time, files []file) error {
	tw := tar.NewWriter(w)
	made := map[string]bool{}
	for _, f := range files {
		if dir := path.Dir(f.name); dir != "." && !made[dir] {
			made[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o555, ModTime: t, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		src, err := os.Open(f.src)
		if err != nil {
			return err
		}
		fi, err := src.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: fi.Size(), Mode: f.mode,
				Uid: f.uid, Gid: f.gid, ModTime: t, Format: tar.FormatPAX})
		}
		if err == nil {
			_, err = io.Copy(tw, src)
		}
		src.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", f.src, err)
		}
	}
	return tw.Close()
}

// Destinations of WriteImages.
const (
	ToRegistry      = "docker://"       // push each image to its reference
	ToOCI           = "oci:"            // oci:DIR, an OCI image layout holding every image
	ToDockerArchive = "docker-archive:" // docker-archive:FILE, one tar for docker load, kind load image-archive, crane push
)

// WriteImages writes images, keyed by the reference each is known by, to
// to: "docker://" pushes each to its reference (with the Docker config's
// credentials), "oci:DIR" adds them to an OCI image layout, each named by
// its reference, and "docker-archive:FILE" writes one tar holding them
// all, tagged.
func WriteImages(ctx context.Context, to string, images map[string]v1.Image) error {
	refs := map[name.Reference]v1.Image{}
	for r, img := range images {
		ref, err := name.ParseReference(r)
		if err != nil {
			return fmt.Errorf("export: image reference %q: %w", r, err)
		}
		refs[ref] = img
	}
	switch {
	case to == ToRegistry:
		for ref, img := range refs {
			if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return fmt.Errorf("export: push %s: %w", ref, err)
			}
		}
		return nil
	case strings.HasPrefix(to, ToOCI) && len(to) > len(ToOCI):
		dir := strings.TrimPrefix(to, ToOCI)
		for ref, img := range refs {
			if err := ociimage.WriteLayout(dir, img, ref.String()); err != nil {
				return fmt.Errorf("export: %w", err)
			}
		}
		return nil
	case strings.HasPrefix(to, ToDockerArchive) && len(to) > len(ToDockerArchive):
		file := strings.TrimPrefix(to, ToDockerArchive)
		tagged := map[name.Tag]v1.Image{}
		for ref, img := range refs {
			tag, ok := ref.(name.Tag)
			if !ok {
				return fmt.Errorf("export: %s: a docker archive needs a tag, not a digest", ref)
			}
			tagged[tag] = img
		}
		if err := writeFileAtomic(file, func(w io.Writer) error { return tarball.MultiWrite(tagged, w) }); err != nil {
			return fmt.Errorf("export: %s: %w", file, err)
		}
		return nil
	}
	return fmt.Errorf("export: images to %q: want docker://, oci:DIR or docker-archive:FILE", to)
}

// writeFileAtomic writes file through a temporary file beside it, so a
// failed write leaves nothing behind.
func writeFileAtomic(file string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(file), ".export-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}
