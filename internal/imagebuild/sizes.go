package imagebuild

import (
	"bytes"
	"debug/elf"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ginit-dev/ginit/internal/modinfo"
	"github.com/u-root/mkuimage/cpio"
)

// SizeInput is what MeasureSizes needs to know about a built image.
type SizeInput struct {
	Config string
	// Records are the image's entries, as written.
	Records []cpio.Record
	// Modules are the kernel modules AddModules put in; nil for none.
	Modules *Modules
	// Raw and XZ are the archive's sizes; Budget its xz budget (0: none).
	Raw, XZ, Budget int64
	// Commands returns the commands of the gbb binary with the packages
	// each imports. Nil: no per-command rows.
	Commands func() ([]GoCommand, error)
	// Unstripped returns an unstripped build of the gbb binary at the
	// given image path, for its symbols, when the image's copy is
	// stripped. Nil: no per-command rows for a stripped binary.
	Unstripped func(name string) ([]byte, error)
	// XZSize compresses data alone; default the image's xz (xzSize).
	XZSize func(data []byte) (int64, error)
}

// SizeReport tells what takes the space in an image. Every byte of the
// archive is in exactly one row: the gbb binary's rows, the modules, the
// other files and the cpio headers add up to Raw.
type SizeReport struct {
	Config          string
	Raw, XZ, Budget int64
	// Binary is the gbb binary; nil when the image has none.
	Binary *BinarySizes
	// Release is the kernel release of Modules.
	Release string
	Modules []ModuleSize
	// Files are the other regular files (templates, module indexes,
	// other binaries).
	Files []FileSize
	// Entries is the number of archive entries; Headers the rest of the
	// archive: cpio headers, names, symlink targets, padding, trailer.
	Entries int
	Headers int64
}

// BinarySizes is the gbb binary.
type BinarySizes struct {
	Path    string // in the image, with a leading slash
	Raw, XZ int64
	// Links are the commands the image links to the binary.
	Links []string
	// Breakdown puts the binary's bytes on its commands; nil when that
	// could not be measured, and Err says why.
	Breakdown *BinaryBreakdown
	Err       error
}

// ModuleSize is one kernel module file.
type ModuleSize struct {
	Name    string
	Path    string // in the image, with a leading slash
	Raw, XZ int64
	// Why the image carries it: "requested", "needed by a, b", ...
	Why string
}

// FileSize is one other regular file.
type FileSize struct {
	Name    string // in the image, with a leading slash
	Raw, XZ int64
	Note    string
}

// MeasureSizes measures what takes the space in an image: the gbb binary
// put on its commands (see Breakdown), each kernel module, and each other
// file, raw and compressed alone.
func MeasureSizes(in SizeInput) (*SizeReport, error) {
	xz := in.XZSize
	if xz == nil {
		xz = xzSize
	}
	r := &SizeReport{Config: in.Config, Raw: in.Raw, XZ: in.XZ, Budget: in.Budget, Entries: len(in.Records)}

	modByPath := map[string]modinfo.Module{}
	if in.Modules != nil {
		r.Release = in.Modules.Release
		for _, m := range in.Modules.Modules {
			modByPath[path.Join(in.Modules.Dir, m.Path)] = m
		}
	}
	links := map[string][]string{} // file -> names of the symlinks to it
	for _, rec := range in.Records {
		if rec.Mode&cpio.S_IFMT == cpio.S_IFLNK {
			target, err := contents(rec)
			if err != nil {
				return nil, err
			}
			t := path.Clean(path.Join(path.Dir(rec.Name), string(target)))
			links[t] = append(links[t], path.Base(rec.Name))
		}
	}
	// The gbb binary: the Go binary that most commands link to.
	bbName := ""
	var dataSum int64
	for _, rec := range in.Records {
		if rec.Mode&cpio.S_IFMT != cpio.S_IFREG {
			continue
		}
		dataSum += int64(rec.FileSize)
		if len(links[rec.Name]) > len(links[bbName]) {
			if _, isMod := modByPath[rec.Name]; !isMod {
				bbName = rec.Name
			}
		}
	}
	r.Headers = in.Raw - dataSum

	for _, rec := range in.Records {
		if rec.Mode&cpio.S_IFMT != cpio.S_IFREG {
			continue
		}
		data, err := contents(rec)
		if err != nil {
			return nil, err
		}
		n, err := xz(data)
		if err != nil {
			return nil, err
		}
		raw := int64(len(data))
		switch m, isMod := modByPath[rec.Name]; {
		case isMod:
			r.Modules = append(r.Modules, ModuleSize{Name: m.Name, Path: "/" + rec.Name, Raw: raw, XZ: n, Why: moduleWhy(m.Name, in.Modules)})
		case rec.Name == bbName && isGoBinary(data):
			l := append([]string(nil), links[rec.Name]...)
			sort.Strings(l)
			r.Binary = &BinarySizes{Path: "/" + rec.Name, Raw: raw, XZ: n, Links: l}
			r.Binary.Breakdown, r.Binary.Err = breakdownBinary(in, rec.Name, data, xz)
		default:
			f := FileSize{Name: "/" + rec.Name, Raw: raw, XZ: n}
			if isGoBinary(data) {
				f.Note = "Go binary"
			} else if _, ok := modinfo.NameFromPath(rec.Name); ok {
				f.Note = "kernel module"
			}
			r.Files = append(r.Files, f)
		}
	}
	sort.SliceStable(r.Modules, func(i, j int) bool {
		if r.Modules[i].Raw != r.Modules[j].Raw {
			return r.Modules[i].Raw > r.Modules[j].Raw
		}
		return r.Modules[i].Name < r.Modules[j].Name
	})
	sort.SliceStable(r.Files, func(i, j int) bool {
		if r.Files[i].Raw != r.Files[j].Raw {
			return r.Files[i].Raw > r.Files[j].Raw
		}
		return r.Files[i].Name < r.Files[j].Name
	})
	return r, nil
}

// breakdownBinary runs Breakdown on the binary at name, or on its
// unstripped copy when it has no symbols.
func breakdownBinary(in SizeInput, name string, data []byte, xz func([]byte) (int64, error)) (*BinaryBreakdown, error) {
	if in.Commands == nil {
		return nil, fmt.Errorf("no command list")
	}
	cmds, err := in.Commands()
	if err != nil {
		return nil, fmt.Errorf("listing the commands' packages: %w", err)
	}
	sym := data
	if !hasSymbols(data) {
		if in.Unstripped == nil {
			return nil, fmt.Errorf("the binary is stripped")
		}
		if sym, err = in.Unstripped(name); err != nil {
			return nil, fmt.Errorf("unstripped build: %w", err)
		}
	}
	b, err := Breakdown(sym, int64(len(data)), cmds)
	if err != nil {
		return nil, err
	}
	if err := b.measureXZ(xz); err != nil {
		return nil, err
	}
	return b, nil
}

// moduleWhy says why mods carries module name.
func moduleWhy(name string, mods *Modules) string {
	var why []string
	for _, l := range mods.Load {
		if l == name {
			why = append(why, "requested")
			break
		}
	}
	var by, softBy []string
	for _, m := range mods.Modules {
		for _, d := range m.Info.Depends {
			if d == name {
				by = append(by, m.Name)
			}
		}
		for _, s := range append(append([]string{}, m.Info.SoftPre...), m.Info.SoftPost...) {
			if modinfo.Normalize(s) == name {
				softBy = append(softBy, m.Name)
			}
		}
	}
	sort.Strings(by)
	sort.Strings(softBy)
	if len(by) > 0 {
		why = append(why, "needed by "+abbreviate(by, 4))
	}
	if len(softBy) > 0 {
		why = append(why, "soft dependency of "+abbreviate(softBy, 4))
	}
	return strings.Join(why, "; ")
}

// sectionWhat says what the bytes of a Go binary's section that no symbol
// names are.
var sectionWhat = map[string]string{
	".gopclntab":     "function tables (names, line and stack maps)",
	".rodata":        "type descriptors, strings, constants",
	".text":          "padding between functions",
	".noptrdata":     "data without symbols",
	".data":          "data without symbols",
	".typelink":      "type index",
	".itablink":      "interface table index",
	"other sections": "build info, notes, without symbols",
}

// binaryMethod is the header of the per-command table: how it is measured
// (see the comment at the top of gosize.go).
const binaryMethod = `  Per command: the ELF symbol sizes (go tool nm -size, on an unstripped build of the same
  sources) of the Go packages that this command alone imports (go list -deps). Packages two or
  more commands import are shared. Bytes no symbol names are listed by section; "≈ with tables"
  adds to a row its share of them, in proportion to its symbols.
`

// String is the report as a table for a terminal: sections of rows sorted
// by size, each with its raw bytes and its bytes compressed alone.
func (r *SizeReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s xz", r.Config, human(r.XZ))
	if r.Budget > 0 {
		fmt.Fprintf(&b, ", %.1f%% of its %s budget", float64(r.XZ)*100/float64(r.Budget), human(r.Budget))
		if r.XZ > r.Budget {
			fmt.Fprintf(&b, " (%s over)", human(r.XZ-r.Budget))
		} else {
			fmt.Fprintf(&b, " (%s left)", human(r.Budget-r.XZ))
		}
	}
	fmt.Fprintf(&b, "; %s raw.\n", human(r.Raw))
	b.WriteString("What takes the space, largest first. raw: the bytes in the archive; xz alone: the row\n" +
		"compressed by itself as the image is, so that column does not add up to the archive's xz.\n")

	if bb := r.Binary; bb != nil {
		fmt.Fprintf(&b, "\nGo commands in %s (%d linked): %s raw, %s xz alone.\n", bb.Path, len(bb.Links), human(bb.Raw), human(bb.XZ))
		if bb.Breakdown == nil {
			fmt.Fprintf(&b, "  no per-command rows: %v\n", bb.Err)
		} else {
			b.WriteString(binaryMethod)
			t := table{right: []bool{false, true, true, true, true}}
			t.add("command", "packages", "raw", "xz alone", "≈ with tables")
			for _, row := range bb.Breakdown.Rows {
				switch row.Kind {
				case RowCommand:
					t.add(row.Name, fmt.Sprint(row.Pkgs), human(row.Raw), humanZ(row.XZ), human(row.Estimate))
				case RowShared:
					t.add("shared (runtime, std, common)", fmt.Sprint(row.Pkgs), human(row.Raw), humanZ(row.XZ), human(row.Estimate))
				case RowUnnamed:
					what := sectionWhat[row.Name]
					if what == "" {
						what = "without symbols"
					}
					t.add(row.Name+": "+what, "", human(row.Raw), humanZ(row.XZ), "")
				case RowOverhead:
					t.add(row.Name, "", human(row.Raw), "", "")
				}
			}
			t.write(&b, "  ")
			if sh := bb.Breakdown.Shared; len(sh) > 0 {
				var top []string
				for _, p := range sh[:min(len(sh), 8)] {
					top = append(top, fmt.Sprintf("%s %s (%d)", p.Pkg, human(p.Size), p.Users))
				}
				fmt.Fprintf(&b, "  largest shared packages (commands importing them; 0: gbb's own): %s\n", strings.Join(top, ", "))
			}
		}
	}

	if len(r.Modules) > 0 {
		var raw, x int64
		for _, m := range r.Modules {
			raw += m.Raw
			x += m.XZ
		}
		fmt.Fprintf(&b, "\nKernel modules for %s: %d files, %s raw, %s xz alone (each .ko by itself).\n", r.Release, len(r.Modules), human(raw), human(x))
		t := table{right: []bool{false, true, true, false}}
		t.add("module", "raw", "xz alone", "why")
		for _, m := range r.Modules {
			t.add(m.Name, human(m.Raw), human(m.XZ), m.Why)
		}
		t.write(&b, "  ")
	}

	b.WriteString("\nFixed files and the archive's own bytes.\n")
	t := table{right: []bool{false, true, true, false}}
	t.add("file", "raw", "xz alone", "")
	for _, f := range r.Files {
		t.add(f.Name, human(f.Raw), human(f.XZ), f.Note)
	}
	t.add(fmt.Sprintf("cpio headers, names, link targets, padding (%d entries)", r.Entries), human(r.Headers), "", "")
	t.write(&b, "  ")
	return b.String()
}

// humanZ is human, with "-" for a size not measured.
func humanZ(n int64) string {
	if n == 0 {
		return "-"
	}
	return human(n)
}

// table lays out rows in aligned columns.
type table struct {
	right []bool // right-align column i
	rows  [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(b *strings.Builder, indent string) {
	var w []int
	for _, row := range t.rows {
		for i, c := range row {
			if i >= len(w) {
				w = append(w, 0)
			}
			w[i] = max(w[i], len([]rune(c)))
		}
	}
	for _, row := range t.rows {
		line := indent
		for i, c := range row {
			pad := strings.Repeat(" ", w[i]-len([]rune(c)))
			if i > 0 {
				line += "  "
			}
			if i < len(t.right) && t.right[i] {
				line += pad + c
			} else {
				line += c + pad
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
}

func isGoBinary(data []byte) bool {
	return checkRecord(cpio.StaticRecord(data, cpio.Info{Name: "x", Mode: cpio.S_IFREG | 0o755})) == nil &&
		strings.HasPrefix(string(data[:min(len(data), 4)]), "\x7fELF")
}

// hasSymbols reports whether an ELF file has a symbol table.
func hasSymbols(data []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(data))
	return err == nil && f.Section(".symtab") != nil
}

func abbreviate(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" +%d", len(s)-n)
}
