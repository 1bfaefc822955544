package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

var compressionOnly = flag.Bool("compression-only", false, "print only the table of the minimal image in each compression the kernel unpacks (needs build/minimal.cpio)")

// icountArgs run the guest's clock off its instruction count, one
// instruction a nanosecond, and skip the time it idles: its uptime then
// counts the instructions a boot executed, the same in every run whatever
// the host's load. TCG's translation of new code is not in it.
var icountArgs = []string{"-icount", "shift=0,sleep=off"}

// initramfsForm is one way to ship the minimal image: the command that
// writes it from the cpio on stdout (none: the cpio itself).
type initramfsForm struct {
	name string
	argv []string
}

// initramfsForms are the compressions the kernel unpacks (CONFIG_RD_*), with
// the options the kernel needs: lz4's legacy frames, xz's CRC32.
var initramfsForms = []initramfsForm{
	{name: "uncompressed"},
	{name: "lz4", argv: []string{"lz4", "-l", "-9", "-c"}},
	{name: "gzip", argv: []string{"gzip", "-9", "-n", "-c"}},
	{name: "zstd", argv: []string{"zstd", "-19", "-q", "-c"}},
	{name: "xz", argv: []string{"xz", "--check=crc32", "-9", "-c"}},
}

// compressionTable boots the minimal image in each form, the floor beside
// it, in interleaved rounds (NVMe, no network card), and prints each one's
// size, its median start of the workload over the floor's, and the same
// under -icount: the instructions the unpacking and the boot executed.
func compressionTable(o options, work string) error {
	dir := filepath.Join(work, "compression")
	floor, disk, err := floorAndDisk(dir)
	if err != nil {
		return err
	}
	raw := filepath.Join(o.build, "minimal.cpio")
	rows := []*peerRow{{name: "floor: the workload as /init", builds: []peerBuild{{initrd: floor}}}}
	for _, f := range initramfsForms {
		b, err := writeForm(f, raw, dir)
		if err != nil {
			return err
		}
		rows = append(rows, &peerRow{name: "ginit (minimal), " + f.name, builds: []peerBuild{b}})
	}
	start := time.Now()
	loadBefore := loadAverage()
	bootDisk := filepath.Join(dir, "boot.img")
	// Under -icount a boot's uptime in ms is its millions of instructions.
	counted := make([]time.Duration, len(rows))
	for i, r := range rows {
		r.starts, r.failed = make([][]time.Duration, 1), make([]string, 1)
		if r.builds[0].skip != "" {
			continue
		}
		vm := peerVM(o, diskSetups[0], r.builds[0], bootDisk, 0)
		vm.Extra = icountArgs
		if at, _, err := workloadStart(vm, disk); err == nil {
			counted[i] = at
		}
	}
	for round := 0; round < *peerRounds; round++ {
		for _, r := range rows {
			if r.builds[0].skip != "" || r.failed[0] != "" {
				continue
			}
			at, _, err := workloadStart(peerVM(o, diskSetups[0], r.builds[0], bootDisk, 0), disk)
			if err != nil {
				r.failed[0] = err.Error()
				continue
			}
			r.starts[0] = append(r.starts[0], at)
		}
	}
	fmt.Printf("## The minimal image in each compression: the workload's start over the floor's, NVMe, no network card, median of %d interleaved rounds; and the instructions the guest executed to it (one -icount boot)\n\n", *peerRounds)
	fmt.Println("| initramfs | size | start over the floor | instructions over the floor's |")
	fmt.Println("|---|---:|---:|---:|")
	for i, r := range rows {
		instructions := "-"
		switch {
		case counted[i] == 0 || counted[0] == 0:
		case i == 0:
			instructions = fmt.Sprintf("%d M", counted[0].Milliseconds())
		default:
			instructions = fmt.Sprintf("%+d M", (counted[i] - counted[0]).Milliseconds())
		}
		fmt.Printf("| %s | %s | %s | %s |\n", r.name, buildSizes(r.builds), peerCell(r, rows[0], 0, i == 0), instructions)
	}
	fmt.Printf("\n%s; load average %s before, %s after; %.0f s.\n\n", start.UTC().Format("2006-01-02 15:04 UTC"),
		loadBefore, loadAverage(), time.Since(start).Seconds())
	return nil
}

// writeForm writes the cpio at raw in form f into dir; a missing tool
// skips the form.
func writeForm(f initramfsForm, raw, dir string) (peerBuild, error) {
	if f.argv == nil {
		return peerBuild{initrd: raw}, nil
	}
	if _, err := exec.LookPath(f.argv[0]); err != nil {
		return peerBuild{skip: f.argv[0] + " not installed"}, nil
	}
	path := filepath.Join(dir, "minimal.cpio."+f.name)
	out, err := os.Create(path)
	if err != nil {
		return peerBuild{}, fmt.Errorf("create %s: %w", path, err)
	}
	defer out.Close()
	var stderr strings.Builder
	cmd := exec.Command(f.argv[0], append(f.argv[1:], raw)...)
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		return peerBuild{}, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	return peerBuild{initrd: path}, nil
}
