// Package inasm reads QEMU's `-d in_asm` log: the guest code TCG
// translates, one block at a time, the first time it runs. The bench counts
// a boot's blocks with it, and bench/inasm says whose code they are.
package inasm

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// KernelSpace is where x86-64's upper half starts: a block at or above it
// is the kernel's, one below it user space's (or the firmware's, before the
// kernel runs).
const KernelSpace = 0xffff800000000000

// Blocks calls each with the guest address of each translated block, in
// the order TCG translated them: each block is an "IN:" line, then its
// first instruction, whose address says whose block it is.
func Blocks(r io.Reader, each func(addr uint64)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	inBlock := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "IN:") {
			inBlock = true
			continue
		}
		if !inBlock || !strings.HasPrefix(line, "0x") {
			continue
		}
		inBlock = false
		addr, _, _ := strings.Cut(line[2:], ":")
		a, err := strconv.ParseUint(addr, 16, 64)
		if err != nil {
			return fmt.Errorf("in_asm log: address %q: %w", addr, err)
		}
		each(a)
	}
	return sc.Err()
}
