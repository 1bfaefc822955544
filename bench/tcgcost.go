package main

import (
	"cmp"
	"context"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ginit-dev/ginit/internal/inasm"
	"github.com/ginit-dev/ginit/internal/qemu"
)

var tcgOnly = flag.Bool("tcg-only", false, "print only the table of what TCG's translation of new code costs on this machine")

// tcgFuncs is how many functions the translation probe calls: enough that
// their first pass takes tens of milliseconds under TCG.
const tcgFuncs = 4000

// tcgProbeSource is a Go program for /init that calls n small functions it
// has never run, then all of them again, prints both times and powers off.
// Each call runs two or three blocks of about five instructions, a
// quarter of them loads and stores, as a boot's blocks are in QEMU's in_asm
// logs (4.7 instructions on average, 28% of the kernel's and 41% of user
// space's with a memory operand), so the first pass is what TCG's
// translation of that much new code costs and the second what running it
// costs.
func tcgProbeSource(n int) string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"fmt\"\n\t\"syscall\"\n\t\"time\"\n)\n\n")
	for i := range n {
		fmt.Fprintf(&b, "//go:noinline\nfunc f%d(x int) int {\n\tif x > %d {\n\t\tsink[x&63] += x*%d + %d\n\t\tx ^= sink[(x>>3)&63]\n\t} else {\n\t\tx = sink[(x+%d)&63] - %d\n\t}\n\treturn x + sink[%d]\n}\n\n",
			i, i, i%7+3, i, i, i%11, i%64)
	}
	b.WriteString("var sink [64]int\n\nvar funcs = []func(int) int{")
	for i := range n {
		fmt.Fprintf(&b, "f%d,", i)
	}
	b.WriteString(`}

func pass() (time.Duration, int) {
	start := time.Now()
	s := 0
	for _, f := range funcs {
		s += f(s & 0xffff)
	}
	return time.Since(start), s
}

func main() {
	first, a := pass()
	again, b := pass()
	fmt.Printf("tcgprobe: %d functions, first pass %d ns, again %d ns (%d)\n", len(funcs), first.Nanoseconds(), again.Nanoseconds(), a^b)
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}
`)
	return b.String()
}

var tcgProbeLine = regexp.MustCompile(`tcgprobe: (\d+) functions, first pass (\d+) ns, again (\d+) ns`)

// buildTCGProbe writes the probe's module under dir and builds it.
func buildTCGProbe(dir string, n int) (bin string, err error) {
	src := filepath.Join(dir, "tcgprobe")
	if err := writeFiles(src, map[string]string{
		"go.mod":  "module tcgprobe\n\ngo 1.22\n",
		"main.go": tcgProbeSource(n),
	}); err != nil {
		return "", err
	}
	bin = filepath.Join(dir, "tcgprobe.bin")
	return bin, goBuildIn(src, bin, ".")
}

// funcRange is one function's text: [start, end).
type funcRange struct{ start, end uint64 }

// probeFuncs is where the probe's called functions (main.f0 ...) are in
// its binary, sorted.
func probeFuncs(bin string) ([]funcRange, error) {
	f, err := elf.Open(bin)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bin, err)
	}
	var rs []funcRange
	for _, s := range syms {
		num, ok := strings.CutPrefix(s.Name, "main.f")
		if _, err := strconv.Atoi(num); !ok || err != nil || elf.ST_TYPE(s.Info) != elf.STT_FUNC {
			continue
		}
		rs = append(rs, funcRange{s.Value, s.Value + s.Size})
	}
	slices.SortFunc(rs, func(a, b funcRange) int { return cmp.Compare(a.start, b.start) })
	return rs, nil
}

// inRanges says whether addr is inside one of the sorted ranges.
func inRanges(rs []funcRange, addr uint64) bool {
	i, _ := slices.BinarySearchFunc(rs, addr, func(r funcRange, a uint64) int {
		switch {
		case a < r.start:
			return 1
		case a >= r.end:
			return -1
		}
		return 0
	})
	return i < len(rs) && addr >= rs[i].start && addr < rs[i].end
}

// tcgTable boots the probe as /init o.boots times, on pc as the peer table
// does, and once more with QEMU logging the blocks it translates, and
// prints the first pass, the second and the translation per block: the
// rate at which a boot's once-run code (the blocks the peer table counts)
// turns into real time here.
func tcgTable(o options, work string) error {
	bin, err := buildTCGProbe(work, tcgFuncs)
	if err != nil {
		return err
	}
	funcs, err := probeFuncs(bin)
	if err != nil {
		return err
	}
	if len(funcs) != tcgFuncs {
		return fmt.Errorf("%s: %d of its %d functions in its symbols", bin, len(funcs), tcgFuncs)
	}
	initrd := filepath.Join(work, "tcgprobe.cpio")
	if err := writeInitCpio(initrd, bin); err != nil {
		return err
	}
	vm := qemu.VM{Kernel: o.kernel, Initrd: initrd, NoNet: true, Append: "quiet"}
	var first, again []time.Duration
	for range o.boots {
		res, err := vm.Run(context.Background())
		if err != nil {
			return fmt.Errorf("translation probe: %w; the console ends: %s", err, lastLines(res.Console, 3))
		}
		m := tcgProbeLine.FindStringSubmatch(res.Console)
		if m == nil {
			return fmt.Errorf("translation probe printed no line; the console ends: %s", lastLines(res.Console, 3))
		}
		f, _ := strconv.ParseInt(m[2], 10, 64)
		a, _ := strconv.ParseInt(m[3], 10, 64)
		first, again = append(first, time.Duration(f)), append(again, time.Duration(a))
	}
	blocks, err := probeBlocks(vm, funcs, filepath.Join(work, "tcgprobe.log"))
	if err != nil {
		return err
	}
	perBlock := (median(first) - median(again)) / time.Duration(blocks)
	fmt.Printf("## What TCG's translation of new code costs here: /init calls %d small functions it has never run, then all of them again (pc, -smp 1, median of %d boots)\n\n", tcgFuncs, o.boots)
	fmt.Println("| first pass | second pass | blocks the first pass translated | translation per block |")
	fmt.Println("|---:|---:|---:|---:|")
	fmt.Printf("| %.1f ms | %.1f ms | %d | %.1f µs |\n\n", ms(median(first)), ms(median(again)), blocks,
		float64(perBlock.Nanoseconds())/1e3)
	fmt.Printf("The peer table's blocks times that rate is about what translating them costs in real time. Load average %s.\n\n", loadAverage())
	return nil
}

// probeBlocks boots vm once with QEMU logging every block it translates and
// counts those inside the probe's functions.
func probeBlocks(vm qemu.VM, funcs []funcRange, log string) (int, error) {
	defer os.Remove(log)
	vm.Extra = append(append([]string(nil), vm.Extra...), "-d", "in_asm", "-D", log)
	res, err := vm.Run(context.Background())
	if err != nil {
		return 0, fmt.Errorf("translation probe with -d in_asm: %w; the console ends: %s", err, lastLines(res.Console, 3))
	}
	if !tcgProbeLine.MatchString(res.Console) {
		return 0, fmt.Errorf("translation probe with -d in_asm printed no line; the console ends: %s", lastLines(res.Console, 3))
	}
	f, err := os.Open(log)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	err = inasm.Blocks(f, func(a uint64) {
		if inRanges(funcs, a) {
			n++
		}
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("%s: no block inside the probe's functions", log)
	}
	return n, err
}
