package imagebuild

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// How the bytes of the gbb binary are put on its commands.
//
// A gbb binary is one Go program that holds every command, so no part of
// the file is "a command" by itself. We measure it the way `go tool nm
// -size` sees it: every ELF symbol of an unstripped build of the same
// sources (the image's copy is stripped, but its sections are byte for byte
// the same size) is put on the Go package that its name starts with, and
// its bytes are summed per package. A package goes to a command when that
// command is the only one in the binary that imports it, directly or not
// (`go list -deps`): leaving the command out drops the whole package.
// Every other package (the runtime, std packages two commands use, common
// libraries, gbb's dispatcher) is "shared". The bytes that no symbol names
// (the function tables in .gopclntab; type descriptors, strings and
// constants in .rodata) are shown per section, and the ELF headers and
// padding last, so the rows add up to the binary's size exactly. A command's
// row is thus what surely goes with it; leaving it out also takes its part of
// the function tables, type data and strings, and maybe parts of shared
// packages that only it called, which the "≈ with tables" column estimates
// by giving each row a share of the unnamed bytes in proportion to its
// symbols.

// GoCommand is one command of a gbb binary and the Go packages it needs.
type GoCommand struct {
	// Name is the command's name in the image: its package path's last
	// element.
	Name string
	// Pkg is the command's import path.
	Pkg string
	// Deps are the import paths of every package the command imports,
	// directly or not (go list's Deps).
	Deps []string
}

// BinaryRowKind says what a BinaryRow counts.
type BinaryRowKind int

// The kinds of row, in the order the table shows them.
const (
	RowCommand  BinaryRowKind = iota // the packages only one command imports
	RowShared                        // packages two or more commands (or none) import
	RowUnnamed                       // bytes of a section that no symbol names
	RowOverhead                      // ELF headers, padding, sections not loaded
)

// BinaryRow is a part of a gbb binary's bytes.
type BinaryRow struct {
	Kind BinaryRowKind
	// Name is the command, "shared", or the section.
	Name string
	// Pkgs is the number of packages the row's symbols belong to.
	Pkgs int
	// Raw is the bytes in the file; XZ the bytes of the row compressed
	// alone (0 when not measured).
	Raw, XZ int64
	// Estimate is Raw plus the row's share of the unnamed bytes, in
	// proportion to its symbol bytes (command and shared rows only).
	Estimate int64

	data []byte
}

// PackageSize is the symbol bytes of one Go package.
type PackageSize struct {
	Pkg  string
	Size int64
	// Users is the number of commands that import the package.
	Users int
}

// BinaryBreakdown is the gbb binary's bytes put on its commands.
type BinaryBreakdown struct {
	// Rows add up to FileSize: commands by size, shared, the unnamed bytes
	// per section, the ELF overhead.
	Rows []BinaryRow
	// Shared are the shared packages, largest first.
	Shared []PackageSize
	// FileSize is the size of the image's (stripped) binary.
	FileSize int64
}

// smallSection is the unnamed size under which sections share one row.
const smallSection = 4096

// elfSymbol is one named extent of a file-backed section.
type elfSymbol struct {
	name    string
	section int // index into the sections slice of binarySymbols
	off     uint64
	size    uint64
}

type elfSection struct {
	name string
	addr uint64
	data []byte
}

// binarySymbols reads the allocated, file-backed sections of an ELF
// executable and its symbols, each clipped to its section and to the
// symbols before it so that no byte is counted twice.
func binarySymbols(bin []byte) ([]elfSection, []elfSymbol, error) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, nil, err
	}
	syms, err := f.Symbols()
	if err != nil {
		if errors.Is(err, elf.ErrNoSymbols) {
			return nil, nil, fmt.Errorf("binary has no symbol table (stripped)")
		}
		return nil, nil, err
	}
	var secs []elfSection
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Type == elf.SHT_NOBITS || s.Size == 0 {
			continue
		}
		d, err := s.Data()
		if err != nil {
			return nil, nil, fmt.Errorf("section %s: %w", s.Name, err)
		}
		secs = append(secs, elfSection{name: s.Name, addr: s.Addr, data: d})
	}
	sort.SliceStable(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
	var out []elfSymbol
	var end uint64 // end of the last symbol taken
	for _, s := range syms {
		if s.Size == 0 || s.Name == "" {
			continue
		}
		typ := elf.ST_TYPE(s.Info)
		if typ != elf.STT_FUNC && typ != elf.STT_OBJECT && typ != elf.STT_NOTYPE {
			continue
		}
		si := -1
		for i, sec := range secs {
			if s.Value >= sec.addr && s.Value < sec.addr+uint64(len(sec.data)) {
				si = i
				break
			}
		}
		if si < 0 {
			continue // .bss, .noptrbss, or outside the file
		}
		sec := secs[si]
		lo, hi := s.Value, min(s.Value+s.Size, sec.addr+uint64(len(sec.data)))
		lo = max(lo, end)
		if lo >= hi {
			continue
		}
		end = hi
		out = append(out, elfSymbol{name: s.Name, section: si, off: lo - sec.addr, size: hi - lo})
	}
	return secs, out, nil
}

// symbolPrefixes are the prefixes of symbols that belong to a package
// named after them (type descriptors, equality and hash functions, itabs).
var symbolPrefixes = []string{"type:.eq.", "type:.hash.", "type:.namedata.", "type:", "go:itab.", "go:info."}

// symbolPackage returns the Go package a symbol belongs to: the longest
// package in known that the name starts with, followed by a dot. A name
// that matches none gives the package path Go's naming implies (up to the
// first dot after the last slash), or "" for the linker's own symbols
// (go:string.*, go:func.*, ...).
func symbolPackage(name string, known map[string]bool) string {
	for _, p := range symbolPrefixes {
		if strings.HasPrefix(name, p) {
			name = name[len(p):]
			break
		}
	}
	name = strings.TrimLeft(name, "*[]0123456789")
	best := ""
	stop := len(name)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '(' || c == '[' || c == ' ' || c == ',' || c == ':' || c == ';' {
			stop = i
			break
		}
		if c == '.' && known[name[:i]] {
			best = name[:i]
		}
	}
	if best != "" {
		return best
	}
	s := name[:stop]
	if strings.HasPrefix(s, "go:") || strings.HasPrefix(s, "type:") || strings.ContainsAny(s, "·") {
		return ""
	}
	slash := strings.LastIndexByte(s, '/')
	dot := strings.IndexByte(s[slash+1:], '.')
	if dot <= 0 {
		return ""
	}
	return s[:slash+1+dot]
}

// packageOwners maps every package the commands import to the one command
// that alone imports it; packages imported by several commands map to "".
// users counts the commands that import each package.
func packageOwners(cmds []GoCommand) (owner map[string]string, users map[string]int) {
	owner, users = map[string]string{}, map[string]int{}
	for _, c := range cmds {
		seen := map[string]bool{}
		for _, p := range append([]string{c.Pkg}, c.Deps...) {
			if seen[p] {
				continue
			}
			seen[p] = true
			users[p]++
			if users[p] == 1 {
				owner[p] = c.Name
			} else {
				owner[p] = ""
			}
		}
	}
	return owner, users
}

// Breakdown puts the bytes of bin, an unstripped gbb binary, on cmds, the
// commands it holds; fileSize is the size of the image's own (stripped)
// copy, whose difference to bin's allocated sections is the ELF overhead.
// See the comment at the top of this file for the method.
func Breakdown(bin []byte, fileSize int64, cmds []GoCommand) (*BinaryBreakdown, error) {
	secs, syms, err := binarySymbols(bin)
	if err != nil {
		return nil, err
	}
	return breakdown(secs, syms, fileSize, cmds), nil
}

// breakdown is Breakdown on a binary's file-backed sections and symbols.
func breakdown(secs []elfSection, syms []elfSymbol, fileSize int64, cmds []GoCommand) *BinaryBreakdown {
	owner, users := packageOwners(cmds)
	known := make(map[string]bool, len(users))
	for p := range users {
		known[p] = true
	}

	type acc struct {
		pkgs map[string]bool
		raw  int64
		data []byte
	}
	groups := map[string]*acc{}
	group := func(name string) *acc {
		g := groups[name]
		if g == nil {
			g = &acc{pkgs: map[string]bool{}}
			groups[name] = g
		}
		return g
	}
	const shared = "shared"
	named := make([][]bool, len(secs)) // bytes of each section some symbol names
	for i, s := range secs {
		named[i] = make([]bool, len(s.data))
	}
	pkgSize := map[string]int64{}
	for _, s := range syms {
		pkg := symbolPackage(s.name, known)
		if pkg == "" {
			continue // the linker's own: left with the section's unnamed bytes
		}
		who := owner[pkg]
		if who == "" {
			who = shared
		}
		g := group(who)
		g.pkgs[pkg] = true
		g.raw += int64(s.size)
		g.data = append(g.data, secs[s.section].data[s.off:s.off+s.size]...)
		pkgSize[pkg] += int64(s.size)
		for k := s.off; k < s.off+s.size; k++ {
			named[s.section][k] = true
		}
	}

	b := &BinaryBreakdown{FileSize: fileSize}
	var symTotal int64
	for name, g := range groups {
		kind := RowCommand
		if name == shared {
			kind = RowShared
		}
		b.Rows = append(b.Rows, BinaryRow{Kind: kind, Name: name, Pkgs: len(g.pkgs), Raw: g.raw, data: g.data})
		symTotal += g.raw
	}
	// Commands without a package of their own still get a row.
	for _, c := range cmds {
		if groups[c.Name] == nil && c.Name != shared {
			b.Rows = append(b.Rows, BinaryRow{Kind: RowCommand, Name: c.Name})
			groups[c.Name] = &acc{}
		}
	}
	var unnamedTotal, allocTotal int64
	small := BinaryRow{Kind: RowUnnamed} // sections with little unnamed, together
	var smallNames []string
	for i, s := range secs {
		allocTotal += int64(len(s.data))
		var rest []byte
		for k, ok := range named[i] {
			if !ok {
				rest = append(rest, s.data[k])
			}
		}
		unnamedTotal += int64(len(rest))
		switch {
		case len(rest) == 0:
		case len(rest) < smallSection:
			smallNames = append(smallNames, s.name)
			small.Raw += int64(len(rest))
			small.data = append(small.data, rest...)
		default:
			b.Rows = append(b.Rows, BinaryRow{Kind: RowUnnamed, Name: s.name, Raw: int64(len(rest)), data: rest})
		}
	}
	switch len(smallNames) {
	case 0:
	case 1:
		small.Name = smallNames[0]
		b.Rows = append(b.Rows, small)
	default:
		small.Name = "other sections"
		b.Rows = append(b.Rows, small)
	}
	if over := fileSize - allocTotal; over != 0 {
		b.Rows = append(b.Rows, BinaryRow{Kind: RowOverhead, Name: "ELF headers, padding, sections not loaded", Raw: over})
	}
	for i := range b.Rows {
		r := &b.Rows[i]
		switch r.Kind {
		case RowCommand, RowShared:
			r.Estimate = r.Raw
			if symTotal > 0 {
				r.Estimate += unnamedTotal * r.Raw / symTotal
			}
		}
	}
	sort.SliceStable(b.Rows, func(i, j int) bool {
		a, c := b.Rows[i], b.Rows[j]
		if a.Kind != c.Kind {
			return a.Kind < c.Kind
		}
		if a.Raw != c.Raw {
			return a.Raw > c.Raw
		}
		return a.Name < c.Name
	})
	for p, n := range pkgSize {
		if owner[p] == "" {
			b.Shared = append(b.Shared, PackageSize{Pkg: p, Size: n, Users: users[p]})
		}
	}
	sort.Slice(b.Shared, func(i, j int) bool {
		if b.Shared[i].Size != b.Shared[j].Size {
			return b.Shared[i].Size > b.Shared[j].Size
		}
		return b.Shared[i].Pkg < b.Shared[j].Pkg
	})
	return b
}

// measureXZ fills in each row's XZ: its bytes compressed alone.
func (b *BinaryBreakdown) measureXZ(xz func([]byte) (int64, error)) error {
	for i := range b.Rows {
		r := &b.Rows[i]
		if len(r.data) == 0 {
			continue
		}
		n, err := xz(r.data)
		if err != nil {
			return err
		}
		r.XZ = n
		r.data = nil
	}
	return nil
}
