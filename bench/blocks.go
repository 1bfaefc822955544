package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/ginit-dev/ginit/internal/inasm"
	"github.com/ginit-dev/ginit/internal/qemu"
)

// blockCount is how many blocks of guest code TCG translated in a boot,
// the kernel's and the rest's: user space, and the firmware before the
// kernel (the same for every boot of a machine type).
type blockCount struct{ kernel, user int }

func (b blockCount) total() int { return b.kernel + b.user }

// String is the count as the tables print it: all (kernel + the rest).
func (b blockCount) String() string {
	return fmt.Sprintf("%d (%d + %d)", b.total(), b.kernel, b.user)
}

// over is b's count beyond floor's, as the tables print it.
func (b blockCount) over(floor blockCount) string {
	return fmt.Sprintf("%+d (%+d %+d)", b.total()-floor.total(), b.kernel-floor.kernel, b.user-floor.user)
}

// countBlocks counts a QEMU `-d in_asm` log's blocks.
func countBlocks(r io.Reader) (blockCount, error) {
	var n blockCount
	err := inasm.Blocks(r, func(a uint64) {
		if a >= inasm.KernelSpace {
			n.kernel++
		} else {
			n.user++
		}
	})
	return n, err
}

// translatedBlocks boots vm once on a fresh copy of disk with QEMU logging
// every block of guest code TCG translates, and counts the blocks up to the
// workload's first line (the log stops when the console shows it). TCG
// translates a block the first time it runs, so the count is what a boot's
// once-run code costs in real time beyond its instructions. A keep path
// gets the log, to see whose blocks they are.
func translatedBlocks(vm qemu.VM, disk, log, keep string) (blockCount, error) {
	defer os.Remove(log)
	if out, err := exec.Command("cp", "--sparse=always", disk, vm.Disk).CombinedOutput(); err != nil {
		return blockCount{}, fmt.Errorf("copy %s: %v: %s", disk, err, out)
	}
	vm.Extra = append(append([]string(nil), vm.Extra...), "-d", "in_asm", "-D", log)
	vm.Triggers = []qemu.Trigger{{When: "floorinit: started at ", Command: "log none"}}
	res, err := vm.Run(context.Background())
	if err != nil {
		return blockCount{}, fmt.Errorf("%w; the console ends: %s", err, lastLines(res.Console, 3))
	}
	if !floorLine.MatchString(res.Console) {
		return blockCount{}, fmt.Errorf("%w; the console ends: %s", errNoLine, lastLines(res.Console, 3))
	}
	f, err := os.Open(log)
	if err != nil {
		return blockCount{}, err
	}
	defer f.Close()
	if keep != "" {
		if out, err := exec.Command("cp", log, keep).CombinedOutput(); err != nil {
			return blockCount{}, fmt.Errorf("keep %s: %v: %s", log, err, out)
		}
	}
	return countBlocks(f)
}
