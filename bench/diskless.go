package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/qemu"
)

var disklessOnly = flag.Bool("diskless-only", false, "print only the diskless table (needs build/linuxboot.cpio)")

// startedLine is ginit's line right before the entrypoint's exec.
const startedLine = "ginit: starting "

// disklessTable boots one small image (the probe) with the linuxboot
// initramfs two ways, side by side: from a disk oci2disk made of it, and
// diskless, pulled at boot from a registry on the host's loopback. It
// reports power-on (QEMU started) to the workload started, and the kernel
// time of the workload's start, medians of o.boots boots.
func disklessTable(o options, work string) error {
	initrd := filepath.Join(o.build, "linuxboot.cpio")
	if _, err := os.Stat(initrd); err != nil {
		return fmt.Errorf("diskless rows need %s: %w", initrd, err)
	}
	probe := filepath.Join(work, "diskless-probe")
	if err := goBuild(probe, "./integration/testdata/probe"); err != nil {
		return err
	}
	img, err := probeImage(probe)
	if err != nil {
		return err
	}
	layout := filepath.Join(work, "diskless-layout")
	if err := ociimage.WriteLayout(layout, img, "probe"); err != nil {
		return err
	}
	disk := filepath.Join(work, "diskless.img")
	cmd := exec.Command("go", "run", "./cmds/oci2disk", "-q", "oci:"+layout, disk)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("oci2disk: %v\n%s", err, out)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(hostPort + "/bench/probe:1")
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	_, port, _ := strings.Cut(hostPort, ":")
	guestRef := "docker://10.0.2.2:" + port + "/bench/probe:1"

	started := []qemu.Trigger{{When: startedLine}}
	rows := []struct {
		name string
		vm   qemu.VM
	}{
		{"local disk (oci2disk), virtio + DHCP", qemu.VM{Kernel: o.kernel, Initrd: initrd, Disk: disk, MemMB: 512, Triggers: started}},
		{"diskless, root=docker:// from a loopback registry", qemu.VM{Kernel: o.kernel, Initrd: initrd, MemMB: 512, Append: "root=" + guestRef, Triggers: started}},
	}
	fmt.Printf("## Diskless boot beside the local disk: the same image (the probe, %s) with the linuxboot initramfs, median of %d boots\n\n", imageSize(img), o.boots)
	fmt.Println("| boot | power-on to workload started | workload started, ms since kernel start | wall |")
	fmt.Println("|---|---:|---:|---:|")
	// Boots alternate between the rows, so that a machine busy with other
	// work slows both alike.
	poweron := make([][]time.Duration, len(rows))
	kernel := make([][]time.Duration, len(rows))
	wall := make([][]time.Duration, len(rows))
	for b := 0; b < o.boots; b++ {
		for i, r := range rows {
			res, err := r.vm.Run(context.Background())
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", r.name, err, res.Console)
			}
			if st := res.ExitLine(); st != 0 || len(res.TriggerTimes) == 0 {
				return fmt.Errorf("%s: workload status %d; console:\n%s", r.name, st, res.Console)
			}
			_, at := res.Phases()
			if at == nil {
				return fmt.Errorf("%s: no boot timing line:\n%s", r.name, res.Console)
			}
			poweron[i] = append(poweron[i], res.TriggerTimes[0])
			kernel[i] = append(kernel[i], at["workload"])
			wall[i] = append(wall[i], res.Wall)
		}
	}
	base := median(poweron[0])
	for i, r := range rows {
		ratio := ""
		if i > 0 {
			ratio = fmt.Sprintf(" (%.2fx)", float64(median(poweron[i]))/float64(base))
		}
		fmt.Printf("| %s | %.2f s%s | %d | %.1f s |\n", r.name, median(poweron[i]).Seconds(), ratio, median(kernel[i]).Milliseconds(), median(wall[i]).Seconds())
	}
	fmt.Println()
	return nil
}

// probeImage is a one-layer image holding the probe at /app/probe, whose
// entrypoint exits at once.
func probeImage(probe string) (v1.Image, error) {
	bin, err := os.ReadFile(probe)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	mt := time.Unix(1700000000, 0)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "app/", Mode: 0o755, ModTime: mt})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "app/probe", Mode: 0o755, Size: int64(len(bin)), ModTime: mt})
	tw.Write(bin)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer := b.Bytes()
	return ociimage.NewImage([]tarball.Opener{func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil }},
		ociimage.Spec{Config: v1.Config{Entrypoint: []string{"/app/probe", "args", "done"}}})
}

// imageSize is the image's compressed layer bytes, as a registry holds them.
func imageSize(img v1.Image) string {
	ls, err := img.Layers()
	if err != nil {
		return "?"
	}
	var n int64
	for _, l := range ls {
		s, _ := l.Size()
		n += s
	}
	return fmt.Sprintf("%.1f MiB compressed", float64(n)/(1<<20))
}
