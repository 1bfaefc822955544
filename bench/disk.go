package main

import (
	"context"
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
	diskRuns = flag.Int("disk-runs", 3, "conversions per oci2disk row (the median is reported)")
	mirror   = flag.String("debian-mirror", envOr("DEBIAN_MIRROR", "http://deb.debian.org/debian"), "mirror for the Debian rootfs of the oci2disk rows")
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

const nobody = 65534

// diskImage is one image the disk table converts.
type diskImage struct {
	name   string
	layout string // OCI layout with the image
	blob   string // its one layer
	files  int    // entries in its tree
}

// diskTable converts images with oci2disk as an unprivileged user, with
// its Go writer and with its older mkfs.ext4 -d path, beside the root-only
// pipeline it replaces (tar -x as root, then mkfs.ext4 -d) and the floor
// (decompressing and checking the layers, as oci2disk reads them, to
// nowhere), in one run: the bundled server, a Debian bookworm minbase
// rootfs, and 100,000 small files.
func diskTable(o options) error {
	if os.Geteuid() != 0 {
		fmt.Printf("## oci2disk: skipped\n\nThe comparison needs root: for debootstrap, for the tar -x pipeline, and to run oci2disk as uid %d.\n\n", nobody)
		return nil
	}
	cache := filepath.Join(o.build, "bench")
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
	var images []diskImage
	server, err := serverRootfs(cache, work)
	if err != nil {
		return err
	}
	debian, debianWhat, err := benchRootfs(cache)
	if err != nil {
		return err
	}
	small, err := smallFilesRootfs(cache, 100000)
	if err != nil {
		return err
	}
	for _, r := range []struct{ name, root string }{
		{"bundled server (examples/hello-server)", server},
		{debianWhat, debian},
		{"100,000 small files", small},
	} {
		layout, blob, err := benchImage(cache, r.root)
		if err != nil {
			return err
		}
		// Everything oci2disk reads must be readable by nobody.
		if err := exec.Command("chmod", "-R", "a+rX", layout).Run(); err != nil {
			return fmt.Errorf("chmod %s: %w", layout, err)
		}
		images = append(images, diskImage{r.name, layout, blob, countFiles(r.root)})
	}
	for _, d := range []string{cache, o.build} {
		os.Chmod(d, 0o755)
	}
	tmp := filepath.Join(work, "tmp")
	os.Mkdir(tmp, 0o755)
	os.Chown(tmp, nobody, nobody)

	loadBefore := loadAvg()
	fmt.Printf("## oci2disk: one-layer OCI images (gzip), %d runs each, median\n\n", *diskRuns)
	fmt.Println("| image | Go writer | floor | Go / floor | `--writer=mkfs` (old path) | old / Go | root pipeline | Go writer's peak RSS | per million files |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	var notes []string
	for _, im := range images {
		files := im.files
		var floor, goW, mkfsW, pipe []time.Duration
		var goRSS, mkfsRSS int64
		var size int64
		var sums [][32]byte
		for i := 0; i < *diskRuns; i++ {
			d, err := floorRead(im.layout)
			if err != nil {
				return err
			}
			floor = append(floor, d)
			for _, w := range []string{"go", "mkfs"} {
				out := filepath.Join(tmp, fmt.Sprintf("oci2disk-%s-%d.img", w, i))
				d, rss, _, err := runOci2disk(bin, w, "oci:"+im.layout, out, tmp)
				if err != nil {
					return err
				}
				if w == "go" {
					goW, goRSS = append(goW, d), max(goRSS, rss)
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
				} else {
					mkfsW, mkfsRSS = append(mkfsW, d), max(mkfsRSS, rss)
				}
				os.Remove(out)
			}
			_, d, err = rootPipeline(im.blob, filepath.Join(work, "pipe"), size)
			if err != nil {
				return err
			}
			pipe = append(pipe, d)
		}
		f, g := median(floor), median(goW)
		// Per million files only where the files, not the fixed costs,
		// make up the memory.
		perMillion := "-"
		if files >= 10000 {
			perMillion = fmt.Sprintf("%.2f GiB", float64(goRSS)/float64(files)*1e6/(1<<30))
		}
		fmt.Printf("| %s | %.2f s | %.2f s | %.2f | %.2f s | %.1fx | %.2f s | %s | %s |\n", im.name, g.Seconds(), f.Seconds(), g.Seconds()/f.Seconds(),
			median(mkfsW).Seconds(), median(mkfsW).Seconds()/g.Seconds(), median(pipe).Seconds(), mib(int(goRSS)), perMillion)
		same := "yes"
		for _, s := range sums[1:] {
			if s != sums[0] {
				same = "NO"
			}
		}
		bfi, _ := os.Stat(im.blob)
		notes = append(notes, fmt.Sprintf("%s: layer %s gzip, %d files, disk %s; `--writer=mkfs` peak RSS %s; same bytes every run: %s (sha256 %x).",
			im.name, mib(int(bfi.Size())), files, mib(int(size)), mib(int(mkfsRSS)), same, sums[0][:8]))
	}
	fmt.Println()
	for _, n := range notes {
		fmt.Println("- " + n)
	}
	fmt.Printf("\nAll as uid 65534 but the root pipeline (`tar -xzf` as root, `mkfs.ext4 -d`, fsync, `rm -rf`). The floor decompresses and checks the layer to nowhere, with oci2disk's reader. Peak RSS is oci2disk's own; per million files, it is scaled by the image's files. e2fsck -fn clean. %d CPUs, load average %s before and %s after.\n\n", runtime.NumCPU(), loadBefore, loadAvg())
	return nil
}

// loadAvg is the machine's 1-, 5- and 15-minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// countFiles counts the entries under root, root itself left out.
func countFiles(root string) int {
	n := 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != root {
			n++
		}
		return nil
	})
	return n
}

// floorRead reads the layout's layers as oci2disk does (decompressed,
// digests checked) into nowhere.
func floorRead(layout string) (time.Duration, error) {
	start := time.Now()
	im, err := ociimage.Open(context.Background(), ociimage.OCI, layout, ociimage.Options{})
	if err != nil {
		return 0, err
	}
	defer im.Close()
	for _, l := range im.Layers {
		r, err := l.Open(nil)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, r)
		if err == nil {
			err = r.Verify()
		}
		r.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", l, err)
		}
	}
	return time.Since(start), nil
}

// serverRootfs is a root with the bundled example server in it.
func serverRootfs(cache, work string) (string, error) {
	root := filepath.Join(cache, "hello-server-root")
	bin := filepath.Join(root, "app/hello-server")
	if _, err := os.Stat(bin); err == nil {
		return root, nil
	}
	os.MkdirAll(filepath.Join(root, "app"), 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/:/app/hello-server\n"), 0o644); err != nil {
		return "", err
	}
	return root, goBuild(bin, "./examples/hello-server")
}

// smallFilesRootfs is a root of n small files, 1000 to a directory.
func smallFilesRootfs(cache string, n int) (string, error) {
	root := filepath.Join(cache, fmt.Sprintf("small-files-%d", n))
	done := filepath.Join(root, ".ginit-bench-done")
	if _, err := os.Stat(done); err == nil {
		return root, nil
	}
	os.RemoveAll(root)
	for i := 0; i < n; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), []byte(fmt.Sprintf("small file %d\n", i)), 0o644); err != nil {
			return "", err
		}
	}
	return root, os.WriteFile(done, nil, 0o644)
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

// runOci2disk converts src as nobody with the writer and returns the wall
// time, its peak RSS and its step times.
func runOci2disk(bin, writer, src, out, tmp string) (time.Duration, int64, string, error) {
	cmd := exec.Command(bin, "-q", "-v", "--writer="+writer, src, out)
	cmd.Env = []string{"HOME=" + tmp, "TMPDIR=" + tmp, "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, "", err
	}
	// rusage's maxrss would count the bench's own memory, which the
	// child shares until it execs: sample the child's high-water mark.
	done := make(chan int64)
	go func() {
		var hwm int64
		for {
			hwm = max(hwm, vmHWM(cmd.Process.Pid))
			select {
			case done <- hwm:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	d := time.Since(start)
	rss := <-done
	b := []byte(output.String())
	if err != nil {
		return 0, 0, "", fmt.Errorf("oci2disk --writer=%s %s as nobody: %v\n%s", writer, src, err, b)
	}
	var steps []string
	for _, m := range stepRe.FindAllStringSubmatch(string(b), -1) {
		steps = append(steps, m[1]+" "+m[2]+" s")
	}
	return d, rss, strings.Join(steps, ", "), nil
}

// vmHWM is a process's peak resident memory in bytes (0 once it is gone).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
			return kib << 10
		}
	}
	return 0
}

// rootPipeline is what oci2disk replaces, run as root: extract the layer
// with tar, copy the tree into an image of the same size with
// mkfs.ext4 -d, fsync the image and remove the tree (oci2disk syncs its
// output and removes its staging tree too). One inode per 4 KiB, so that
// a tree of small files fits in the disk the Go writer sized.
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
		{"mkfs.ext4", "-q", "-F", "-i", "4096", "-E", "root_owner=0:0", "-d", root, img, fmt.Sprint(size / 1024)},
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
