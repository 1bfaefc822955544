package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

var machinesOnly = flag.Bool("machines-only", false, "print only the table of QEMU's machine types: the floor and ginit on pc and on microvm")

// machineRow is one initramfs on one machine type, with the workload's
// start measured for each disk setup: in guest time, and since QEMU
// started, which also holds the firmware's time.
type machineRow struct {
	name    string
	machine qemu.Machine
	build   peerBuild
	guest   [][]time.Duration // per setup, per round
	wall    [][]time.Duration
	blocks  []blockCount // per setup
}

// machineTable boots the floor and ginit's minimal cpio on pc and on
// microvm, with the same kernel, root disk and workload as the peer
// table, in interleaved rounds, and prints the medians, what microvm
// saves, ginit's overhead per round, and then, from one more boot of each,
// the blocks TCG translated.
func machineTable(o options, work string) error {
	dir := filepath.Join(work, "machines")
	floor, disk, err := floorAndDisk(dir)
	if err != nil {
		return err
	}
	// The cpio as ginitctl and run-qemu.sh boot it.
	ginit := filepath.Join(o.build, "minimal.cpio")
	var rows []*machineRow
	for _, b := range []struct {
		name   string
		initrd string
	}{{"floor", floor}, {"ginit (minimal, uncompressed)", ginit}} {
		for _, m := range []qemu.Machine{qemu.PC, qemu.MicroVM} {
			rows = append(rows, &machineRow{name: b.name, machine: m, build: peerBuild{initrd: b.initrd},
				guest: make([][]time.Duration, len(diskSetups)), wall: make([][]time.Duration, len(diskSetups))})
		}
	}
	start, loadBefore := time.Now(), loadAverage()
	bootDisk := filepath.Join(dir, "boot.img")
	for round := 0; round < *peerRounds; round++ {
		for _, r := range rows {
			for i, s := range diskSetups {
				vm := peerVM(o, s, r.build, bootDisk, 0)
				vm.Machine = r.machine
				guest, wall, err := workloadStart(vm, disk)
				if err != nil {
					return fmt.Errorf("%s on %s, %s: %w", r.name, r.machine, s.name, err)
				}
				r.guest[i] = append(r.guest[i], guest)
				r.wall[i] = append(r.wall[i], wall)
			}
		}
	}
	for _, r := range rows {
		r.blocks = make([]blockCount, len(diskSetups))
		for i, s := range diskSetups {
			vm := peerVM(o, s, r.build, bootDisk, 0)
			vm.Machine = r.machine
			if r.blocks[i], err = translatedBlocks(vm, disk, filepath.Join(dir, "in_asm.log"), ""); err != nil {
				return fmt.Errorf("%s on %s, %s, counting translated blocks: %w", r.name, r.machine, s.name, err)
			}
		}
	}
	printMachineTable(rows, *peerRounds)
	fmt.Printf("\n%s; load average %s before, %s after; %.0f s.\n\n", start.UTC().Format("2006-01-02 15:04 UTC"),
		loadBefore, loadAverage(), time.Since(start).Seconds())
	return nil
}

// printMachineTable prints each row's medians, then microvm's against
// pc's for the same initramfs, ginit's overhead over the floor on each
// machine (of the medians, and per round), and the translated blocks.
// rows are floor on pc, floor on microvm, ginit on pc, ginit on microvm.
func printMachineTable(rows []*machineRow, rounds int) {
	fmt.Printf("## Machine types: the workload's start, since the kernel's start / since QEMU's start (firmware included), median of %d interleaved rounds\n\n", rounds)
	printSetupHeader("boot")
	cells := func(f func(i int) string) string {
		var c []string
		for i := range diskSetups {
			c = append(c, f(i))
		}
		return strings.Join(c, " | ")
	}
	for _, r := range rows {
		fmt.Printf("| %s on %s | %s |\n", r.name, r.machine, cells(func(i int) string {
			return fmt.Sprintf("%.2f s / %.2f s", median(r.guest[i]).Seconds(), median(r.wall[i]).Seconds())
		}))
	}
	diff := func(a, b *machineRow) string {
		return cells(func(i int) string {
			return fmt.Sprintf("%+.2f s / %+.2f s", (median(a.guest[i]) - median(b.guest[i])).Seconds(),
				(median(a.wall[i]) - median(b.wall[i])).Seconds())
		})
	}
	fmt.Printf("| floor: microvm - pc | %s |\n", diff(rows[1], rows[0]))
	fmt.Printf("| ginit: microvm - pc | %s |\n", diff(rows[3], rows[2]))
	fmt.Printf("| ginit - floor, on pc | %s |\n", diff(rows[2], rows[0]))
	fmt.Printf("| ginit - floor, on microvm | %s |\n", diff(rows[3], rows[1]))
	paired := func(a, b *machineRow) string {
		return cells(func(i int) string {
			q1, med, q3 := quartiles(pairedDiffs(a.guest[i], b.guest[i]))
			return fmt.Sprintf("%+.2f s (%+.2f to %+.2f s)", med.Seconds(), q1.Seconds(), q3.Seconds())
		})
	}
	fmt.Printf("\nEach round's ginit boot minus the same round's floor boot, in guest time: median (first to third quartile)\n\n")
	printSetupHeader("boot")
	fmt.Printf("| ginit - floor, on pc | %s |\n", paired(rows[2], rows[0]))
	fmt.Printf("| ginit - floor, on microvm | %s |\n", paired(rows[3], rows[1]))

	fmt.Printf("\nBlocks of guest code TCG translated up to the workload's first line, one boot each: all (the kernel's + the rest: user space, and the firmware before the kernel)\n\n")
	printSetupHeader("boot")
	for _, r := range rows {
		fmt.Printf("| %s on %s | %s |\n", r.name, r.machine, cells(func(i int) string {
			return r.blocks[i].String()
		}))
	}
	blockDiff := func(a, b *machineRow) string {
		return cells(func(i int) string {
			return a.blocks[i].over(b.blocks[i])
		})
	}
	fmt.Printf("| ginit - floor, on pc | %s |\n", blockDiff(rows[2], rows[0]))
	fmt.Printf("| ginit - floor, on microvm | %s |\n", blockDiff(rows[3], rows[1]))
}

// pairedDiffs is a[i] - b[i] for each round i that both have.
func pairedDiffs(a, b []time.Duration) []time.Duration {
	var d []time.Duration
	for i := range min(len(a), len(b)) {
		d = append(d, a[i]-b[i])
	}
	return d
}
