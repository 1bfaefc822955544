package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/ociimage"
)

var (
	diskOnly = flag.Bool("disk-only", false, "print only the oci2disk table")
	diskRuns = flag.Int("disk-runs", 5, "conversions per oci2disk row (the median is reported)")
	mirror   = flag.String("debian-mirror", envOr("DEBIAN_MIRROR", "http://deb.debian.org/debian"), "mirror for the Debian rootfs of the oci2disk rows")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

const nobody = 65534

// diskTable converts a realistic image (a Debian bookworm minbase rootfs
// of about 200 MB, packed as a one-layer OCI image) with oci2disk as an
// unprivileged user, and with the root-only pipeline it replaces (tar -x
// as root, then mkfs.ext4 -d) beside it, in one run.
func diskTable(o options) error {
	if os.Geteuid() != 0 {
		fmt.Printf("## oci2disk: skipped\n\nThe comparison needs root: for debootstrap, for the tar -x pipeline, and to run oci2disk as uid %d.\n\n", nobody)
		return nil
	}
	cache := filepath.Join(o.build, "bench")
	rootfs, what, err := benchRootfs(cache)
	if err != nil {
		return err
	}
	layout, blob, err := benchImage(cache, rootfs)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "ginit-bench-disk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755)
	bin := filepath.Join(work, "oci2disk")
	if err := goBuild(bin, "./cmds/oci2disk"); err != nil {
		return err
	}
	// Everything oci2disk reads must be readable by nobody.
	if err := exec.Command("chmod", "-R", "a+rX", layout).Run(); err != nil {
		return fmt.Errorf("chmod %s: %w", layout, err)
	}
	for _, d := range []string{cache, o.build} {
		os.Chmod(d, 0o755)
	}
	tmp := filepath.Join(work, "tmp")
	os.Mkdir(tmp, 0o755)
	os.Chown(tmp, nobody, nobody)

	var pipe, pipeKeep, unpriv []time.Duration
	var phases []string
	var sums [][32]byte
	var size int64
	for i := 0; i < *diskRuns; i++ {
		out := filepath.Join(tmp, fmt.Sprintf("oci2disk-%d.img", i))
		d, vout, err := runOci2disk(bin, "oci:"+layout, out, tmp)
		if err != nil {
			return err
		}
		unpriv = append(unpriv, d)
		phases = append(phases, vout)
		s, err := fileSum(out)
		if err != nil {
			return err
		}
		sums = append(sums, s)
		fi, _ := os.Stat(out)
		size = fi.Size()
		if i == 0 {
			if b, err := exec.Command("e2fsck", "-fn", out).CombinedOutput(); err != nil {
				return fmt.Errorf("e2fsck -fn %s: %v\n%s", out, err, b)
			}
		}
		os.Remove(out)

		keep, d, err := rootPipeline(blob, filepath.Join(work, "pipe"), size)
		if err != nil {
			return err
		}
		pipe, pipeKeep = append(pipe, d), append(pipeKeep, keep)
	}
	same := "yes"
	for _, s := range sums[1:] {
		if s != sums[0] {
			same = "NO"
		}
	}
	bfi, _ := os.Stat(blob)
	fmt.Printf("## oci2disk: %s as a one-layer OCI image (%s gzip), %d runs, median\n\n", what, mib(int(bfi.Size())), *diskRuns)
	fmt.Println("| conversion | wall | ratio to the first row |")
	fmt.Println("|---|---:|---:|")
	p := median(pipe)
	fmt.Printf("| root-only pipeline: `tar -xzf` as root, `mkfs.ext4 -d`, fsync, `rm -rf` the tree | %.2f s | 1.00 |\n", p.Seconds())
	k := median(pipeKeep)
	fmt.Printf("| the same, leaving the extracted tree behind | %.2f s | %.2f |\n", k.Seconds(), k.Seconds()/p.Seconds())
	u := median(unpriv)
	fmt.Printf("| oci2disk oci:LAYOUT as uid %d (digest checks, whiteouts, owners, config) | %.2f s | %.2f |\n", nobody, u.Seconds(), u.Seconds()/p.Seconds())
	fmt.Println()
	fmt.Printf("Disk %s; every oci2disk run gave the same bytes: %s (sha256 %x); e2fsck -fn clean. oci2disk steps, last run: %s. %d CPUs.\n\n",
		mib(int(size)), same, sums[0][:8], phases[len(phases)-1], runtime.NumCPU())
	return nil
}

// benchRootfs returns the cached Debian rootfs, made by debootstrap the
// first time. Without a mirror it says so and falls back to the largest
// honest tree at hand: the Go installation.
func benchRootfs(cache string) (string, string, error) {
	root := filepath.Join(cache, "debian-bookworm-minbase")
	done := filepath.Join(root, ".ginit-bench-done")
	if _, err := os.Stat(done); err == nil {
		return root, "Debian bookworm minbase rootfs (" + du(root) + ")", nil
	}
	if deb, err := exec.LookPath("debootstrap"); err == nil {
		os.RemoveAll(root)
		os.MkdirAll(cache, 0o755)
		fmt.Fprintf(os.Stderr, "bench: debootstrap --variant=minbase bookworm %s %s (once; cached)\n", root, *mirror)
		cmd := exec.Command(deb, "--variant=minbase", "bookworm", root, *mirror)
		out, err := cmd.CombinedOutput()
		if err == nil {
			if err := os.WriteFile(done, nil, 0o644); err != nil {
				return "", "", err
			}
			return root, "Debian bookworm minbase rootfs (" + du(root) + ")", nil
		}
		fmt.Fprintf(os.Stderr, "bench: debootstrap failed (%v): %s\n", err, lastLines(string(out), 3))
	} else {
		fmt.Fprintln(os.Stderr, "bench: no debootstrap (apt-get install debootstrap)")
	}
	goroot := runtime.GOROOT()
	if b, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		goroot = strings.TrimSpace(string(b))
	}
	fmt.Fprintf(os.Stderr, "bench: no Debian rootfs; using the Go installation %s instead\n", goroot)
	return goroot, "the Go installation " + goroot + " (" + du(goroot) + ", no Debian rootfs: debootstrap failed)", nil
}

// benchImage packs rootfs as a one-layer OCI image into a cached layout
// and returns the layout and its layer blob.
func benchImage(cache, rootfs string) (string, string, error) {
	layout := filepath.Join(cache, "oci-"+filepath.Base(rootfs))
	if blob, err := layerBlob(layout); err == nil {
		return layout, blob, nil
	}
	os.RemoveAll(layout)
	fmt.Fprintf(os.Stderr, "bench: packing %s as an OCI image into %s (once; cached)\n", rootfs, layout)
	tmp, err := os.CreateTemp(cache, "layer-*.tar")
	if err != nil {
		return "", "", err
	}
	defer os.Remove(tmp.Name())
	clamp := time.Unix(1700000000, 0)
	if err := ociimage.TarDir(tmp, rootfs, ociimage.TarOptions{Clamp: &clamp}); err != nil {
		return "", "", err
	}
	tmp.Close()
	img, err := ociimage.NewImage([]tarball.Opener{func() (io.ReadCloser, error) { return os.Open(tmp.Name()) }},
		ociimage.Spec{Created: clamp, Config: v1.Config{Cmd: []string{"/bin/bash"}}})
	if err != nil {
		return "", "", err
	}
	if err := ociimage.WriteLayout(layout, img, "bench"); err != nil {
		return "", "", err
	}
	blob, err := layerBlob(layout)
	return layout, blob, err
}

// layerBlob finds the one layer blob of the layout's image: the largest
// blob.
func layerBlob(layout string) (string, error) {
	blobs, err := filepath.Glob(filepath.Join(layout, "blobs/sha256/*"))
	if err != nil || len(blobs) == 0 {
		return "", fmt.Errorf("no blobs in %s", layout)
	}
	best, bestSize := "", int64(-1)
	for _, b := range blobs {
		if fi, err := os.Stat(b); err == nil && fi.Size() > bestSize {
			best, bestSize = b, fi.Size()
		}
	}
	return best, nil
}

var stepRe = regexp.MustCompile(`(?m)^oci2disk: (\S+)\s+([0-9.]+)s$`)

// runOci2disk converts src as nobody and returns the wall time and its
// step times.
func runOci2disk(bin, src, out, tmp string) (time.Duration, string, error) {
	cmd := exec.Command(bin, "-q", "-v", src, out)
	cmd.Env = []string{"HOME=" + tmp, "TMPDIR=" + tmp, "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	start := time.Now()
	b, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, "", fmt.Errorf("oci2disk %s as nobody: %v\n%s", src, err, b)
	}
	var steps []string
	for _, m := range stepRe.FindAllStringSubmatch(string(b), -1) {
		steps = append(steps, m[1]+" "+m[2]+" s")
	}
	return d, strings.Join(steps, ", "), nil
}

// rootPipeline is what oci2disk replaces, run as root: extract the layer
// with tar, copy the tree into an image of the same size with
// mkfs.ext4 -d, fsync the image and remove the tree (oci2disk syncs its
// output and removes its staging tree too).
func rootPipeline(blob, dir string, size int64) (time.Duration, time.Duration, error) {
	os.RemoveAll(dir)
	root, img := filepath.Join(dir, "root"), filepath.Join(dir, "disk.img")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	var beforeRm time.Duration
	start := time.Now()
	steps := [][]string{
		{"tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xzpf", blob, "-C", root},
		{"mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", root, img, fmt.Sprint(size / 1024)},
		{"sync", img},
		{"rm", "-rf", root},
	}
	for _, s := range steps {
		if s[0] == "rm" {
			beforeRm = time.Since(start)
		}
		if b, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("%s: %v\n%s", strings.Join(s, " "), err, b)
		}
	}
	return beforeRm, time.Since(start), nil
}

func fileSum(p string) ([32]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s, nil
}

func du(p string) string {
	b, err := exec.Command("du", "-sh", "--apparent-size", p).Output()
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " / ")
}
