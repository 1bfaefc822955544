// Command bench prints ginit's benchmark tables: image size per config, build
// time, and the boot phases under QEMU beside the floor (the same kernel with
// an /init that powers off at once), as medians of several boots in one run.
//
//	go run ./bench [-boots 5] [-configs minimal,debug,linuxboot]
//
// It expects build/kernel (make kernel). Every number in a table comes from
// this run; ratios compare rows measured side by side.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/u-root/mkuimage/cpio"

	"github.com/ginit-dev/ginit/internal/qemu"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	boots   int
	configs []string
	build   string
	kernel  string
	modules string
}

func run() error {
	var o options
	var configs string
	flag.IntVar(&o.boots, "boots", 5, "boots per row (the median is reported)")
	flag.StringVar(&configs, "configs", "minimal,debug,linuxboot", "image configs to build and measure")
	flag.StringVar(&o.build, "build", "build", "build directory")
	flag.Parse()
	o.configs = strings.Split(configs, ",")
	o.kernel = filepath.Join(o.build, "kernel/vmlinuz")
	mods, _ := filepath.Glob(filepath.Join(o.build, "kernel/lib/modules/*"))
	if len(mods) == 1 {
		o.modules = mods[0]
	}
	if _, err := os.Stat(o.kernel); err != nil {
		return fmt.Errorf("no kernel at %s: run make kernel first", o.kernel)
	}
	work, err := os.MkdirTemp("", "ginit-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	if *peerICount {
		fmt.Printf("Under -icount: a guest second below is 1,000 M executed instructions, TCG's translation left out.\n\n")
	}
	if *bootOnly {
		return bootTable(o, work)
	}
	if *disklessOnly {
		return disklessTable(o, work)
	}
	if *netOnly {
		return netTable(o, work)
	}
	if *execOnly {
		return execTable(o, work)
	}
	if *ginitctlOnly {
		return ginitctlTable(o, work)
	}
	if *peersOnly {
		return peersTable(o, work)
	}
	if *machinesOnly {
		return machineTable(o, work)
	}
	if *compressionOnly {
		return compressionTable(o, work)
	}
	if *tcgOnly {
		return tcgTable(o, work)
	}
	if err := diskTable(o); err != nil || *diskOnly {
		return err
	}
	if err := imageTable(o, work); err != nil {
		return err
	}
	linuxbootTable(os.Stdout, o)
	if err := bootTable(o, work); err != nil {
		return err
	}
	if err := ginitctlTable(o, work); err != nil {
		return err
	}
	if err := netTable(o, work); err != nil {
		return err
	}
	if err := execTable(o, work); err != nil {
		return err
	}
	if err := peersTable(o, work); err != nil {
		return err
	}
	if err := machineTable(o, work); err != nil {
		return err
	}
	if err := tcgTable(o, work); err != nil {
		return err
	}
	if err := compressionTable(o, work); err != nil {
		return err
	}
	return disklessTable(o, work)
}

// imageTable builds each config with mkimage, timing the build, and prints
// raw, gzip and xz sizes.
func imageTable(o options, work string) error {
	mkimage := filepath.Join(work, "mkimage")
	if err := goBuild(mkimage, "./cmds/mkimage"); err != nil {
		return err
	}
	fmt.Println("## Image size per config")
	fmt.Println()
	fmt.Println("| config | raw | gzip -9 | xz | build time |")
	fmt.Println("|---|---:|---:|---:|---:|")
	for _, c := range o.configs {
		start := time.Now()
		cmd := exec.Command(mkimage, "-config", c, "-kernel-modules", o.modules, "-o", o.build)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", c, err, out)
		}
		took := time.Since(start)
		raw, err := os.ReadFile(filepath.Join(o.build, c+".cpio"))
		if err != nil {
			return err
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(raw)
		zw.Close()
		xzSize, err := xzLen(filepath.Join(o.build, c+".cpio"))
		if err != nil {
			return err
		}
		fmt.Printf("| %s | %s | %s | %s | %.1f s |\n", c, mib(len(raw)), mib(gz.Len()), mib(xzSize), took.Seconds())
	}
	fmt.Println()
	return nil
}

func xzLen(path string) (int, error) {
	if fi, err := os.Stat(path + ".xz"); err == nil {
		return int(fi.Size()), nil
	}
	out, err := exec.Command("xz", "--check=crc32", "-9", "-T1", "-c", path).Output()
	if err != nil {
		return 0, fmt.Errorf("xz %s: %w", path, err)
	}
	return len(out), nil
}

func mib(n int) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

var bootOnly = flag.Bool("boot-only", false, "print only the boot phase table (needs build/minimal.cpio)")

// row is one boot configuration measured o.boots times.
type row struct {
	name string
	vm   qemu.VM
	// floor rows end at floorinit's line instead of ginit's timing line.
	floor bool
}

var floorLine = regexp.MustCompile(`floorinit: started at (\d+) ms`)

func bootTable(o options, work string) error {
	// The workload: the probe, which exits at once.
	root := filepath.Join(work, "root")
	if err := goBuild(filepath.Join(root, "app/probe"), "./integration/testdata/probe"); err != nil {
		return err
	}
	disk := filepath.Join(work, "disk.img")
	cmd := exec.Command("go", "run", "./cmds/oci2disk", "-q", "--entrypoint", "/app/probe args done", "dir:"+root, disk)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("oci2disk: %v\n%s", err, out)
	}
	floor, err := floorInitramfs(work)
	if err != nil {
		return err
	}
	initrd := filepath.Join(o.build, "minimal.cpio")
	rows := []row{
		{name: "floor: /init powers off at once", vm: qemu.VM{Kernel: o.kernel, Initrd: floor, NoNet: true}, floor: true},
		{name: "ginit, virtio disk + net, DHCP", vm: qemu.VM{Kernel: o.kernel, Initrd: initrd, Disk: disk}},
		{name: "ginit, NVMe disk, no network card", vm: qemu.VM{Kernel: o.kernel, Initrd: initrd, Disk: disk, DiskBus: "nvme", NoNet: true}},
	}
	fmt.Printf("## Boot under QEMU TCG: median of %d boots, ms since kernel start\n\n", o.boots)
	phaseNames := []string{"init", "mounts", "modules", "rootfound", "rootmounted", "network", "workload"}
	fmt.Printf("| boot | Run /init | %s | overhead (workload - Run /init) | wall |\n", strings.Join(phaseNames, " | "))
	fmt.Printf("|---|---:|%s---:|---:|\n", strings.Repeat("---:|", len(phaseNames)))
	for _, r := range rows {
		var runInit, overhead, wall []time.Duration
		phases := map[string][]time.Duration{}
		for i := 0; i < o.boots; i++ {
			res, err := r.vm.Run(context.Background())
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", r.name, err, res.Console)
			}
			ri, ok := res.KernelTime("Run /init as init process")
			if !ok {
				return fmt.Errorf("%s: no 'Run /init' line on the console:\n%s", r.name, res.Console)
			}
			runInit = append(runInit, ri)
			wall = append(wall, res.Wall)
			if r.floor {
				m := floorLine.FindStringSubmatch(res.Console)
				if m == nil {
					return fmt.Errorf("%s: floorinit printed nothing:\n%s", r.name, res.Console)
				}
				ms, _ := strconv.Atoi(m[1])
				at := time.Duration(ms) * time.Millisecond
				phases["workload"] = append(phases["workload"], at)
				overhead = append(overhead, at-ri)
				continue
			}
			if st := res.ExitLine(); st != 0 {
				return fmt.Errorf("%s: workload status %d; console:\n%s", r.name, st, res.Console)
			}
			_, at := res.Phases()
			if at == nil {
				return fmt.Errorf("%s: no boot timing line:\n%s", r.name, res.Console)
			}
			for k, v := range at {
				phases[k] = append(phases[k], v)
			}
			overhead = append(overhead, at["workload"]-ri)
		}
		cells := []string{}
		for _, p := range phaseNames {
			if len(phases[p]) == 0 {
				cells = append(cells, "-")
				continue
			}
			cells = append(cells, strconv.FormatInt(median(phases[p]).Milliseconds(), 10))
		}
		fmt.Printf("| %s | %d | %s | %d | %.1f s |\n", r.name, median(runInit).Milliseconds(), strings.Join(cells, " | "),
			median(overhead).Milliseconds(), median(wall).Seconds())
	}
	fmt.Println()
	return nil
}

func median(d []time.Duration) time.Duration {
	_, m, _ := quartiles(d)
	return m
}

// quartiles is the first quartile, the median and the third quartile of
// d, each one of its values (as median is).
func quartiles(d []time.Duration) (q1, med, q3 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	return s[n/4], s[n/2], s[(3*n)/4]
}

// floorInitramfs writes a cpio holding only /dev/console and floorinit.
func floorInitramfs(work string) (string, error) {
	bin := filepath.Join(work, "floorinit")
	if err := goBuild(bin, "./bench/floorinit"); err != nil {
		return "", err
	}
	path := filepath.Join(work, "floor.cpio")
	return path, writeInitCpio(path, bin)
}

// writeInitCpio writes a cpio at path holding only /dev/console and the
// program bin as /init.
func writeInitCpio(path, bin string) error {
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	return writeCpio(path, []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticFile("init", string(b), 0o755),
	})
}
