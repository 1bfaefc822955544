package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

var (
	peersOnly    = flag.Bool("peers-only", false, "print only the table of ginit beside other initramfs builders, and the memory floor")
	peerRounds   = flag.Int("peer-rounds", 5, "interleaved rounds of the peer table (the median is reported)")
	peerRowsFlag = flag.String("peer-rows", "", "boot only the peer table's rows whose names start with one of these comma-separated prefixes (the floor always)")
	inAsmDir     = flag.String("in-asm-dir", "", "keep each block-counting boot's QEMU in_asm log in this directory, the kernel booted with nokaslr so that its addresses match System.map")
	peerICount   = flag.Bool("icount", false, "boot the peer, machine and compression tables under QEMU's -icount: a guest second is then 1,000 M executed instructions, the same on a loaded machine (TCG's translation time left out)")
)

// diskSetup is one column of the peer table: the root disk's bus and
// whether the machine has a network card to get a lease on.
type diskSetup struct {
	name string
	bus  string // qemu.VM.DiskBus
	net  bool
	root string // the disk's device, for root=
}

var diskSetups = []diskSetup{
	{name: "NVMe, no network card", bus: "nvme", root: "/dev/nvme0n1"},
	{name: "virtio disk + net, DHCP", bus: "virtio", net: true, root: "/dev/vda"},
}

// peerRow is one initramfs of the peer table: its build for each disk
// setup and the workload's start times measured with it.
type peerRow struct {
	name   string
	make   func(e *peerEnv, s diskSetup) peerBuild
	builds []peerBuild
	starts [][]time.Duration // per setup
	failed []string          // per setup: why a boot failed
	blocks []*blockCount     // per setup; nil where not counted
}

// peersTable boots the same workload on the same root disk behind each
// initramfs, in interleaved rounds, and prints each one's overhead over
// the floor (the workload itself as /init) for each disk setup, then the
// smallest memory the floor and ginit boot in.
func peersTable(o options, work string) error {
	dir := filepath.Join(work, "peers")
	floor, disk, err := floorAndDisk(dir)
	if err != nil {
		return err
	}
	if *inAsmDir != "" {
		// The workload's entry ends ginit's part of a kept log (bench/inasm).
		if out, err := exec.Command("cp", filepath.Join(dir, "floorinit"), filepath.Join(*inAsmDir, "floorinit")).CombinedOutput(); err != nil {
			return fmt.Errorf("keep the workload in %s: %v: %s", *inAsmDir, err, out)
		}
	}
	ginitInitrd, ginitCompression := shippedImage(o.build, "minimal")
	env, err := newPeerEnv(o, dir)
	if err != nil {
		return err
	}
	rows := []*peerRow{
		{name: "floor: the workload as /init", make: func(*peerEnv, diskSetup) peerBuild { return peerBuild{initrd: floor} }},
		{name: "ginit (minimal, " + ginitCompression + ")", make: func(*peerEnv, diskSetup) peerBuild { return peerBuild{initrd: ginitInitrd} }},
		// What the decompression costs, to choose the shipped form by.
		{name: "ginit (minimal, the same cpio uncompressed)", make: func(*peerEnv, diskSetup) peerBuild {
			return peerBuild{initrd: filepath.Join(o.build, "minimal.cpio")}
		}},
		{name: "tiny-initramfs (C; loads modules, mounts root, switch_root)", make: tinyInitramfs},
		{name: "initramfs-tools (busybox, udev)", make: initramfsTools},
		{name: "dracut without systemd (udev)", make: dracutInitramfs},
		{name: "booster (Go, udev-less)", make: booster},
		{name: "the original ginit (Go + busybox)", make: originalGinit},
	}
	rows = chosenRows(rows, *peerRowsFlag)
	start := time.Now()
	loadBefore := loadAverage()
	buildPeers(rows, env)
	bootPeers(o, rows, disk, filepath.Join(dir, "boot.img"), *peerRounds)
	countPeerBlocks(o, rows, disk, filepath.Join(dir, "boot.img"), filepath.Join(dir, "in_asm.log"))
	printPeerTable(rows, *peerRounds)
	printPeerPaired(rows)
	printPeerBlocks(rows)
	fmt.Printf("\n%s; load average %s before, %s after; %.0f s.\n\n", start.UTC().Format("2006-01-02 15:04 UTC"),
		loadBefore, loadAverage(), time.Since(start).Seconds())
	return memoryTable(o, peerBuild{initrd: floor}, peerBuild{initrd: ginitInitrd}, disk, filepath.Join(dir, "boot.img"))
}

// chosenRows is the floor and the rows whose names start with one of the
// comma-separated prefixes; all rows when there are none.
func chosenRows(rows []*peerRow, prefixes string) []*peerRow {
	if prefixes == "" {
		return rows
	}
	chosen := []*peerRow{rows[0]}
	for _, r := range rows[1:] {
		for _, p := range strings.Split(prefixes, ",") {
			if strings.HasPrefix(r.name, strings.TrimSpace(p)) {
				chosen = append(chosen, r)
				break
			}
		}
	}
	return chosen
}

// buildPeers makes each row's initramfs for each disk setup.
func buildPeers(rows []*peerRow, env *peerEnv) {
	for _, r := range rows {
		for _, s := range diskSetups {
			b := r.make(env, s)
			if b.skip != "" {
				fmt.Fprintf(os.Stderr, "bench: %s, %s: not run: %s\n", r.name, s.name, b.skip)
			}
			r.builds = append(r.builds, b)
		}
		r.starts = make([][]time.Duration, len(diskSetups))
		r.failed = make([]string, len(diskSetups))
	}
}

// bootPeers boots every built row on every setup once per round, rows
// interleaved so that the machine's load weighs on all alike; a row whose
// boot fails on a setup is not booted there again.
func bootPeers(o options, rows []*peerRow, disk, bootDisk string, rounds int) {
	for round := 0; round < rounds; round++ {
		for _, r := range rows {
			for i, s := range diskSetups {
				if r.builds[i].skip != "" || r.failed[i] != "" {
					continue
				}
				at, _, err := workloadStart(peerVM(o, s, r.builds[i], bootDisk, 0), disk)
				if err != nil {
					r.failed[i] = err.Error()
					fmt.Fprintf(os.Stderr, "bench: %s, %s: %v\n", r.name, s.name, err)
					continue
				}
				r.starts[i] = append(r.starts[i], at)
			}
		}
	}
}

// countPeerBlocks boots each row that booted on a setup once more, with
// TCG's translated blocks counted.
func countPeerBlocks(o options, rows []*peerRow, disk, bootDisk, log string) {
	for _, r := range rows {
		r.blocks = make([]*blockCount, len(diskSetups))
		for i, s := range diskSetups {
			if len(r.starts[i]) == 0 {
				continue
			}
			vm, keep := peerVM(o, s, r.builds[i], bootDisk, 0), ""
			if *inAsmDir != "" {
				vm.Append += " nokaslr"
				keep = filepath.Join(*inAsmDir, logName(r.name, s.bus))
			}
			n, err := translatedBlocks(vm, disk, log, keep)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %s, %s: counting translated blocks: %v\n", r.name, s.name, err)
				continue
			}
			r.blocks[i] = &n
		}
	}
}

// logName is a file name for a row's log on a disk bus: the row's name in
// lower-case words joined by dashes, and the bus.
func logName(row, bus string) string {
	words := strings.FieldsFunc(strings.ToLower(row), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
	return strings.Join(append(words, bus), "-") + ".log"
}

// printPeerBlocks prints the floor's translated blocks and each row's
// over them: what a boot's once-run code costs under TCG beyond its
// instructions.
func printPeerBlocks(rows []*peerRow) {
	fmt.Printf("\nBlocks of guest code TCG translated up to the workload's first line, one boot each: the floor's, and each row's over them (the kernel's, the rest's: user space, and the firmware before the kernel)\n\n")
	printSetupHeader("initramfs")
	floor := rows[0]
	for ri, r := range rows {
		var cells []string
		for i := range diskSetups {
			b, f := r.blocks[i], floor.blocks[i]
			switch {
			case b == nil:
				cells = append(cells, "-")
			case ri == 0:
				cells = append(cells, b.String())
			case f == nil:
				cells = append(cells, "no floor")
			default:
				cells = append(cells, b.over(*f))
			}
		}
		fmt.Printf("| %s | %s |\n", r.name, strings.Join(cells, " | "))
	}
}

// peerVM is the machine every row boots: the same kernel, QEMU flags and
// root disk, quiet; memMB 0 is qemu.VM's default.
func peerVM(o options, s diskSetup, b peerBuild, disk string, memMB int) qemu.VM {
	vm := qemu.VM{Kernel: o.kernel, Initrd: b.initrd, Disk: disk, DiskBus: s.bus, NoNet: !s.net,
		Append: strings.TrimSpace("quiet " + b.append), MemMB: memMB, Timeout: 60 * time.Second}
	if *peerICount {
		vm.Extra = icountArgs
	}
	return vm
}

var errNoLine = errors.New("the workload printed no uptime line")

// workloadStart boots vm on a fresh copy of disk and returns the
// workload's start in guest time, and since QEMU started (the firmware's
// time too). A line lost to the power-off racing the serial console costs
// one more boot.
func workloadStart(vm qemu.VM, disk string) (guest, wall time.Duration, err error) {
	var res qemu.Result
	vm.Triggers = []qemu.Trigger{{When: "floorinit: started at "}}
	for try := 0; try < 2; try++ {
		if out, err := exec.Command("cp", "--sparse=always", disk, vm.Disk).CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("copy %s: %v: %s", disk, err, out)
		}
		res, err = vm.Run(context.Background())
		if err != nil {
			return 0, 0, fmt.Errorf("%w; the console ends: %s", err, lastLines(res.Console, 3))
		}
		if m := floorLine.FindStringSubmatch(res.Console); m != nil && len(res.TriggerTimes) > 0 {
			ms, _ := strconv.Atoi(m[1])
			return time.Duration(ms) * time.Millisecond, res.TriggerTimes[0], nil
		}
	}
	return 0, 0, fmt.Errorf("%w; the console ends: %s", errNoLine, lastLines(res.Console, 3))
}

// printPeerTable prints each row's median overhead over the floor's for
// each setup, and the size of its initramfs.
func printPeerTable(rows []*peerRow, rounds int) {
	fmt.Printf("## Boot beside other initramfs builders: the workload's start over the floor's (the floor's: since the kernel's start), median of %d interleaved rounds\n\n", rounds)
	fmt.Printf("| initramfs | %s | size as shipped |\n", strings.Join(setupNames(), " | "))
	fmt.Printf("|---|%s---:|\n", strings.Repeat("---:|", len(diskSetups)))
	floor := rows[0]
	for ri, r := range rows {
		var cells []string
		for i := range diskSetups {
			cells = append(cells, peerCell(r, floor, i, ri == 0))
		}
		fmt.Printf("| %s | %s | %s |\n", r.name, strings.Join(cells, " | "), buildSizes(r.builds))
	}
}

// printPeerPaired prints, for each row, its boot in each round minus the
// floor's boot in the same round: the machine's load drifts over a run
// more than it changes between two boots in a row, so the spread of these
// says what the medians are worth.
func printPeerPaired(rows []*peerRow) {
	fmt.Printf("\nEach round's boot minus the same round's floor boot: median (first to third quartile)\n\n")
	printSetupHeader("initramfs")
	floor := rows[0]
	for _, r := range rows[1:] {
		var cells []string
		for i := range diskSetups {
			d := pairedDiffs(r.starts[i], floor.starts[i])
			if len(d) == 0 {
				cells = append(cells, "-")
				continue
			}
			q1, med, q3 := quartiles(d)
			cells = append(cells, fmt.Sprintf("%+.2f s (%+.2f to %+.2f s)", med.Seconds(), q1.Seconds(), q3.Seconds()))
		}
		fmt.Printf("| %s | %s |\n", r.name, strings.Join(cells, " | "))
	}
}

// printSetupHeader prints the head of a table with a column per disk
// setup.
func printSetupHeader(first string) {
	fmt.Printf("| %s | %s |\n", first, strings.Join(setupNames(), " | "))
	fmt.Printf("|---|%s\n", strings.Repeat("---:|", len(diskSetups)))
}

func setupNames() []string {
	var n []string
	for _, s := range diskSetups {
		n = append(n, s.name)
	}
	return n
}

// peerCell is the floor's own time, or a row's overhead over it, or why
// there is none.
func peerCell(r, floor *peerRow, i int, isFloor bool) string {
	b := r.builds[i]
	switch {
	case b.skip != "":
		return "not run: " + b.skip
	case len(r.starts[i]) == 0 && r.failed[i] != "":
		return "failed: " + oneLine(r.failed[i])
	case len(r.starts[i]) == 0:
		return "-"
	case isFloor:
		return fmt.Sprintf("%.2f s", median(r.starts[i]).Seconds())
	case len(floor.starts[i]) == 0:
		return "no floor"
	}
	cell := fmt.Sprintf("%+.2f s", (median(r.starts[i]) - median(floor.starts[i])).Seconds())
	if b.note != "" {
		cell += " (" + b.note + ")"
	}
	if r.failed[i] != "" {
		cell += fmt.Sprintf(" (%d boots; then failed: %s)", len(r.starts[i]), oneLine(r.failed[i]))
	}
	return cell
}

// buildSizes is the size of a row's initramfs, or of each when its
// builds for the setups differ.
func buildSizes(builds []peerBuild) string {
	var cells []string
	for i, b := range builds {
		fi, err := os.Stat(b.initrd)
		if b.initrd == "" || err != nil {
			continue
		}
		cells = append(cells, fmt.Sprintf("%s %s (%s)", mib(int(fi.Size())), compression(b.initrd), diskSetups[i].bus))
	}
	if len(cells) == 0 {
		return ""
	}
	first, _, _ := strings.Cut(cells[0], " (")
	for _, c := range cells[1:] {
		if !strings.HasPrefix(c, first+" (") {
			return strings.Join(cells, ", ")
		}
	}
	return first
}

// compression names an initramfs's compression by its magic.
func compression(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	head := make([]byte, 6)
	n, _ := f.Read(head)
	head = head[:n]
	for _, m := range []struct{ magic, name string }{
		{"\x1f\x8b", "gzip"}, {"\xfd7zXZ", "xz"}, {"\x28\xb5\x2f\xfd", "zstd"}, {"\x02\x21\x4c\x18", "lz4"}, {"070701", "cpio"},
	} {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			return m.name
		}
	}
	return "?"
}

// shippedImage is a config's initramfs as make image ships it: its first
// compressed form, or the cpio.
func shippedImage(build, config string) (string, string) {
	base := filepath.Join(build, config+".cpio")
	for _, ext := range []string{"xz", "zst", "lz4", "gz"} {
		if _, err := os.Stat(base + "." + ext); err == nil {
			return base + "." + ext, compression(base + "." + ext)
		}
	}
	return base, "uncompressed"
}

// workloadDisk makes the root disk every row boots: the workload at /bench
// (the image's entrypoint, for ginit; init=/bench for the others) and the
// directories a switch_root moves its mounts into.
func workloadDisk(dir, workload string) (string, error) {
	root := filepath.Join(dir, "root")
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", fmt.Errorf("mkdir %s: %w", root, err)
		}
	}
	b, err := os.ReadFile(workload)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(root, "bench"), b, 0o755); err != nil {
		return "", fmt.Errorf("write %s: %w", root, err)
	}
	disk := filepath.Join(dir, "disk.img")
	cmd := exec.Command("go", "run", "./cmds/oci2disk", "-q", "--entrypoint", "/bench", "dir:"+root, disk)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("oci2disk %s: %v\n%s", root, err, out)
	}
	return disk, nil
}

// memoryTable finds the smallest memory, in 8 MiB steps up to 256 MiB,
// in which the floor and ginit boot the workload (NVMe, no network card).
func memoryTable(o options, floor, ginit peerBuild, disk, bootDisk string) error {
	fmt.Println("## Memory floor: the smallest -m (8 MiB steps) that boots and starts the workload, NVMe, no network card")
	fmt.Println()
	fmt.Println("| initramfs | smallest -m |")
	fmt.Println("|---|---:|")
	for _, r := range []struct {
		name string
		b    peerBuild
	}{{"floor: the workload as /init", floor}, {"ginit (minimal)", ginit}} {
		boots := func(mem int) bool {
			_, _, err := workloadStart(peerVM(o, diskSetups[0], r.b, bootDisk, mem), disk)
			return err == nil
		}
		cell := "over 256 MiB"
		if mem := smallestMemory(boots, 8, 256, 8); mem > 0 {
			cell = fmt.Sprintf("%d MiB", mem)
		}
		fmt.Printf("| %s | %s |\n", r.name, cell)
	}
	fmt.Println()
	return nil
}

// smallestMemory binary-searches the smallest multiple of step in
// [lo, hi] for which boots is true, taking boots as monotonic; 0 when hi
// does not boot.
func smallestMemory(boots func(mib int) bool, lo, hi, step int) int {
	if !boots(hi) {
		return 0
	}
	l, h := lo/step, hi/step
	for l < h {
		m := (l + h) / 2
		if boots(m * step) {
			h = m
		} else {
			l = m + 1
		}
	}
	return h * step
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func oneLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// floorAndDisk makes dir and in it the floor's initramfs (the workload as
// /init) and the root disk with the same workload that every boot table
// hands over to.
func floorAndDisk(dir string) (floor, disk string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("mkdir %s: %w", dir, err)
	}
	if floor, err = floorInitramfs(dir); err != nil {
		return "", "", err
	}
	disk, err = workloadDisk(dir, filepath.Join(dir, "floorinit"))
	return floor, disk, err
}
