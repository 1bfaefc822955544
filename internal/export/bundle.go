package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ginit-dev/ginit/internal/disk"
	"github.com/ginit-dev/ginit/internal/imagesrc"
)

// Inputs is what every export starts from.
type Inputs struct {
	// Image is the container image: anything oci2disk takes for an
	// export with a disk, a registry reference (docker://REF or REF) for
	// one that pulls at boot.
	Image  string
	Kernel string // the kernel to boot
	Initrd string // ginit's initramfs: minimal, or linuxboot to pull at boot
	Out    string // the directory the files go to
	// Created stamps the images; the zero time is the Unix epoch, so the
	// same inputs give the same images.
	Created time.Time
}

// Names of the files an export writes into Inputs.Out.
const (
	VMFile       = "vm.yaml"
	JobFile      = "job.nomad.hcl"
	HardwareFile = "hardware.yaml"
	ScriptFile   = "boot.ipxe"
)

// output tracks the files an export writes, so that a failed export
// removes them: bad input leaves nothing behind.
type output struct {
	dir     string
	made    bool // the export made dir
	written []string
}

func (o *output) path(name string) string { return filepath.Join(o.dir, name) }

func (o *output) write(name string, data []byte) error {
	return o.writeWith(name, func(w io.Writer) error { _, err := w.Write(data); return err })
}

func (o *output) copy(name, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer in.Close()
	return o.writeWith(name, func(w io.Writer) error { _, err := io.Copy(w, in); return err })
}

func (o *output) writeWith(name string, write func(io.Writer) error) error {
	p := o.path(name)
	if err := writeFileAtomic(p, write); err != nil {
		return fmt.Errorf("export: %s: %w", p, err)
	}
	o.written = append(o.written, p)
	return nil
}

// undo removes what was written when err is not nil.
func (o *output) undo(err *error) {
	if *err != nil {
		for _, p := range o.written {
			os.Remove(p)
		}
		o.written = nil
		if o.made {
			os.Remove(o.dir) // only when empty
		}
	}
}

func (in Inputs) start() (*output, error) {
	for _, f := range []string{in.Kernel, in.Initrd} {
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("export: %s: want the kernel and ginit's initramfs (make image), as regular files", f)
		}
	}
	_, err := os.Stat(in.Out)
	made := os.IsNotExist(err)
	if err := os.MkdirAll(in.Out, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return &output{dir: in.Out, made: made}, nil
}

func (in Inputs) created() time.Time {
	if in.Created.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return in.Created
}

// buildDisk makes the image's root disk at out, as oci2disk would.
func (in Inputs) buildDisk(ctx context.Context, out string) error {
	src, err := imagesrc.ParseSource(in.Image)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := disk.Build(ctx, disk.Options{Source: src, Output: out}); err != nil {
		return fmt.Errorf("export: disk from %s: %w", in.Image, err)
	}
	return nil
}

// registryRef is the reference of an image pulled at boot.
func registryRef(image string) (string, error) {
	ref := strings.TrimPrefix(image, "docker://")
	if _, err := name.ParseReference(ref); err != nil || strings.Contains(ref, "://") {
		return "", fmt.Errorf("export: %q: an image pulled at boot must be a registry reference (docker://REF)", image)
	}
	return ref, nil
}

// Export writes the KubeVirt artifacts: the kernel-boot image and, unless
// diskless, the containerDisk made from in.Image, to `to` (WriteImages),
// and the VirtualMachine to in.Out/vm.yaml. Diskless, in.Image is the
// reference pulled at boot. It returns the files it wrote.
func (k KubeVirt) Export(ctx context.Context, in Inputs, to string) (files []string, err error) {
	if k.DiskRef == "" {
		if k.Root, err = registryRef(in.Image); err != nil {
			return nil, err
		}
	}
	vm, err := k.VirtualMachine()
	if err != nil {
		return nil, err
	}
	out, err := in.start()
	if err != nil {
		return nil, err
	}
	defer out.undo(&err)
	images := map[string]v1.Image{}
	if images[k.BootRef], err = KernelBoot(in.Kernel, in.Initrd, in.created()); err != nil {
		return nil, err
	}
	if k.DiskRef != "" {
		if k.DiskRef == k.BootRef {
			return nil, errors.New("export: the containerDisk and the kernel-boot image need two references")
		}
		tmp, err := os.MkdirTemp(in.Out, ".disk-")
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		defer os.RemoveAll(tmp) // the images read it until WriteImages returns
		diskPath := filepath.Join(tmp, DiskFile)
		if err := in.buildDisk(ctx, diskPath); err != nil {
			return nil, err
		}
		if images[k.DiskRef], err = ContainerDisk(diskPath, in.created()); err != nil {
			return nil, err
		}
	}
	if err := WriteImages(ctx, to, images); err != nil {
		return nil, err
	}
	if err := out.write(VMFile, vm); err != nil {
		return nil, err
	}
	return out.written, nil
}

// Export writes the Nomad job to in.Out/job.nomad.hcl beside its three
// artifacts, to be served at n.BaseURL: the kernel, the initramfs and the
// disk made from in.Image.
func (n Nomad) Export(ctx context.Context, in Inputs) (files []string, err error) {
	job, err := n.Job()
	if err != nil {
		return nil, err
	}
	out, err := in.start()
	if err != nil {
		return nil, err
	}
	defer out.undo(&err)
	if err := out.copy(NomadKernel, in.Kernel); err != nil {
		return nil, err
	}
	if err := out.copy(NomadInitrd, in.Initrd); err != nil {
		return nil, err
	}
	if err := in.buildDisk(ctx, out.path(NomadDisk)); err != nil {
		return nil, err
	}
	out.written = append(out.written, out.path(NomadDisk))
	if err := out.write(JobFile, job); err != nil {
		return nil, err
	}
	return out.written, nil
}

// Export writes the Tinkerbell Hardware and its iPXE script to in.Out
// beside the kernel and initramfs (the linuxboot image) to be served at
// t.BaseURL; the machine pulls in.Image at boot.
func (t Tinkerbell) Export(in Inputs) (files []string, err error) {
	if t.Root, err = registryRef(in.Image); err != nil {
		return nil, err
	}
	hw, err := t.Hardware()
	if err != nil {
		return nil, err
	}
	out, err := in.start()
	if err != nil {
		return nil, err
	}
	defer out.undo(&err)
	if err := out.write(HardwareFile, hw); err != nil {
		return nil, err
	}
	if err := out.write(ScriptFile, []byte(t.Script())); err != nil {
		return nil, err
	}
	if err := out.copy(NomadKernel, in.Kernel); err != nil {
		return nil, err
	}
	if err := out.copy(NomadInitrd, in.Initrd); err != nil {
		return nil, err
	}
	return out.written, nil
}
