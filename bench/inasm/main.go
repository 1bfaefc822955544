// Command inasm says whose code a boot's translated blocks are: it reads a
// QEMU `-d in_asm` log of a ginit boot (kept by `go run ./bench
// -peers-only -in-asm-dir DIR`) and splits it at ginit's boot steps, with
// each step's kernel and user-space blocks and the functions with the most.
//
//	go run ./bench/inasm -bin BB [-workload BIN] [-system-map MAP] LOG
//
// BB is an unstripped build of the image's gbb binary, whose text is the
// image's byte for byte:
//
//	go tool u-root -build=gbb -config-file=uroot.json -config=minimal \
//	    -go-extra-args=-ldflags=-X=runtime.godebugDefault= -go-no-strip -o bb.cpio
//
// BIN is the workload, whose first block ends ginit's part of the log.
// MAP is the kernel's System.map (Debian ships it in the kernel's -dbg
// package); the log's kernel must have booted with nokaslr, as the bench's
// kept logs do. Without it kernel blocks are counted, not named.
package main

import (
	"bufio"
	"cmp"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ginit-dev/ginit/internal/inasm"
)

// symbol is a function's first address and name.
type symbol struct {
	addr uint64
	name string
}

// symbols are functions sorted by address.
type symbols []symbol

func (s symbols) sorted() symbols {
	slices.SortFunc(s, func(a, b symbol) int { return cmp.Compare(a.addr, b.addr) })
	return s
}

// lookup is the function at or before addr, and whether addr is its first
// instruction.
func (s symbols) lookup(addr uint64) (string, bool) {
	i := sort.Search(len(s), func(i int) bool { return s[i].addr > addr }) - 1
	if i < 0 {
		return "?", false
	}
	return s[i].name, s[i].addr == addr
}

func elfSymbols(path string) (symbols, uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w (an unstripped build is needed)", path, err)
	}
	var s symbols
	for _, sym := range syms {
		if elf.ST_TYPE(sym.Info) == elf.STT_FUNC {
			s = append(s, symbol{sym.Value, sym.Name})
		}
	}
	return s.sorted(), f.Entry, nil
}

func entry(path string) (uint64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Entry, nil
}

func systemMap(path string) (symbols, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var s symbols
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || !strings.ContainsAny(fields[1], "tTwW") {
			continue
		}
		a, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			continue
		}
		s = append(s, symbol{a, fields[2]})
	}
	if len(s) < 2 {
		return nil, fmt.Errorf("%s: no text symbols (Debian's /boot copy is a placeholder: take the -dbg package's)", path)
	}
	return s.sorted(), sc.Err()
}

// step is one part of the boot: from the first block of a step's function
// to the next step's.
type step struct {
	name         string
	kernel, user int
	kfuncs       map[string]int
	ufuncs       map[string]int
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inasm:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("bin", "", "unstripped gbb binary of the image")
	workload := flag.String("workload", "", "the workload's binary: its first block ends the count")
	mapPath := flag.String("system-map", "", "the kernel's System.map (booted with nokaslr)")
	steps := flag.String("steps", "runtime.main,bbmain.Run,mountEarly,readCmdline,becomePID1,loadModules,startControl,readRunDocument,startNetwork,obtainRoot,resolveWorkload,prepareRoot,runWorkload",
		"functions that start a step, by the end of their names: the first block of each starts its step")
	top := flag.Int("top", 8, "functions named per step and space")
	flag.Parse()
	if *bin == "" || flag.NArg() != 1 {
		return errors.New("usage: inasm -bin BB [-workload BIN] [-system-map MAP] LOG")
	}
	user, start, err := elfSymbols(*bin)
	if err != nil {
		return err
	}
	var end uint64
	if *workload != "" {
		if end, err = entry(*workload); err != nil {
			return err
		}
	}
	var kernel symbols
	if *mapPath != "" {
		if kernel, err = systemMap(*mapPath); err != nil {
			return err
		}
	}
	stepNames := strings.Split(*steps, ",")
	startsStep := func(fn string) string {
		for _, s := range stepNames {
			if fn == s || strings.HasSuffix(fn, "."+s) {
				return s
			}
		}
		return ""
	}

	f, err := os.Open(flag.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	var parts []*step
	begun, done := false, false
	seen := map[string]bool{}
	newStep := func(name string) {
		parts = append(parts, &step{name: name, kfuncs: map[string]int{}, ufuncs: map[string]int{}})
	}
	err = inasm.Blocks(f, func(a uint64) {
		switch {
		case done:
			return
		case !begun:
			if a == start {
				begun = true
				newStep("start of the binary")
			} else {
				return
			}
		case end != 0 && a == end:
			done = true
			return
		}
		cur := parts[len(parts)-1]
		if a >= inasm.KernelSpace {
			cur.kernel++
			switch {
			case kernel == nil:
			case a >= 0xffffffffc0000000:
				cur.kfuncs["[a module]"]++
			default:
				fn, _ := kernel.lookup(a)
				cur.kfuncs[fn]++
			}
			return
		}
		fn, first := user.lookup(a)
		if s := startsStep(fn); first && s != "" && !seen[s] {
			seen[s] = true
			newStep(s)
			cur = parts[len(parts)-1]
		}
		cur.user++
		cur.ufuncs[fn]++
	})
	if err != nil {
		return err
	}
	if !begun {
		return fmt.Errorf("%s: no block at %s's entry %#x: another binary, or not a ginit boot", flag.Arg(0), *bin, start)
	}
	fmt.Printf("| step | kernel blocks | user blocks | most user blocks | most kernel blocks |\n|---|---:|---:|---|---|\n")
	var k, u int
	for _, p := range parts {
		k, u = k+p.kernel, u+p.user
		fmt.Printf("| %s | %d | %d | %s | %s |\n", p.name, p.kernel, p.user, most(p.ufuncs, *top), most(p.kfuncs, *top))
	}
	fmt.Printf("| all | %d | %d | | |\n", k, u)
	return nil
}

// most names the n functions with the most blocks, with their counts.
func most(counts map[string]int, n int) string {
	type fc struct {
		name string
		n    int
	}
	var all []fc
	for name, c := range counts {
		all = append(all, fc{name, c})
	}
	slices.SortFunc(all, func(a, b fc) int { return cmp.Or(b.n-a.n, strings.Compare(a.name, b.name)) })
	var out []string
	for i := 0; i < len(all) && i < n; i++ {
		name := all[i].name
		if j := strings.LastIndex(name, "/"); j >= 0 {
			name = name[j+1:]
		}
		out = append(out, fmt.Sprintf("%s %d", name, all[i].n))
	}
	return strings.Join(out, ", ")
}
