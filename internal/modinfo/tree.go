package modinfo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// Tree is a kernel's module directory (/lib/modules/<version>), read through
// an fs.FS rooted there. It finds modules by name and by alias and knows which
// modules are built into the kernel.
type Tree struct {
	fsys fs.FS

	// Decompress, when set, turns the bytes of a compressed module file
	// (.ko.xz, .ko.zst, .ko.gz) into ELF bytes. Without it such modules
	// cannot be read.
	Decompress func(name string, data []byte) ([]byte, error)

	paths          map[string]string // module name -> path in fsys
	builtin        map[string]bool
	builtinAliases map[string][]string
	infos          map[string]Info
	aliases        []aliasEntry // every module's aliases, built on first use
}

type aliasEntry struct {
	pattern, module string
}

// Module is one module file that an image carries.
type Module struct {
	Name string // kernel name, with underscores
	Path string // path relative to the version directory, e.g. kernel/drivers/block/virtio_blk.ko
	Size int64  // bytes of the file as stored
	Info Info
}

// OpenTree indexes the module files under fsys (every *.ko, *.ko.xz,
// *.ko.zst, *.ko.gz) and reads modules.builtin and modules.builtin.modinfo
// when present. Where two files give the same module name, one under
// updates/ wins, then the first in lexical order, as depmod prefers.
func OpenTree(fsys fs.FS) (*Tree, error) {
	t := &Tree{
		fsys:           fsys,
		paths:          make(map[string]string),
		builtin:        map[string]bool{},
		builtinAliases: map[string][]string{},
		infos:          make(map[string]Info),
	}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		name, ok := NameFromPath(p)
		if !ok {
			return nil
		}
		if old, dup := t.paths[name]; dup {
			if !strings.HasPrefix(p, "updates/") || strings.HasPrefix(old, "updates/") {
				return nil
			}
		}
		t.paths[name] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("indexing modules: %w", err)
	}
	if b, err := fs.ReadFile(fsys, "modules.builtin"); err == nil {
		t.builtin = ParseBuiltin(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading modules.builtin: %w", err)
	}
	if b, err := fs.ReadFile(fsys, "modules.builtin.modinfo"); err == nil {
		t.builtinAliases = ParseBuiltinModinfo(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading modules.builtin.modinfo: %w", err)
	}
	return t, nil
}

// Len returns how many module files the tree holds.
func (t *Tree) Len() int { return len(t.paths) }

// IsBuiltin reports whether the named module is built into the kernel.
func (t *Tree) IsBuiltin(name string) bool { return t.builtin[Normalize(name)] }

// Path returns the path of the named module's file, if the tree has one.
func (t *Tree) Path(name string) (string, bool) {
	p, ok := t.paths[Normalize(name)]
	return p, ok
}

// Info reads (once) the .modinfo of the named module file.
func (t *Tree) Info(name string) (Info, error) {
	name = Normalize(name)
	if info, ok := t.infos[name]; ok {
		return info, nil
	}
	p, ok := t.paths[name]
	if !ok {
		return Info{}, fmt.Errorf("module %s: %w", name, fs.ErrNotExist)
	}
	data, err := t.readELF(p)
	if err != nil {
		return Info{}, err
	}
	info, err := Read(bytes.NewReader(data))
	if err != nil {
		return Info{}, fmt.Errorf("module %s (%s): %w", name, p, err)
	}
	t.infos[name] = info
	return info, nil
}

func (t *Tree) readELF(p string) ([]byte, error) {
	data, err := fs.ReadFile(t.fsys, p)
	if err != nil {
		return nil, fmt.Errorf("reading module %s: %w", p, err)
	}
	if strings.HasSuffix(p, ".ko") {
		return data, nil
	}
	if t.Decompress == nil {
		return nil, fmt.Errorf("module %s is compressed and no decompressor is set", p)
	}
	out, err := t.Decompress(p, data)
	if err != nil {
		return nil, fmt.Errorf("decompressing module %s: %w", p, err)
	}
	return out, nil
}

// byAlias returns the modules (files, then built-ins) whose aliases match s.
func (t *Tree) byAlias(s string) (files, builtins []string, err error) {
	if t.aliases == nil {
		names := make([]string, 0, len(t.paths))
		for n := range t.paths {
			names = append(names, n)
		}
		sort.Strings(names)
		t.aliases = []aliasEntry{}
		for _, n := range names {
			info, err := t.Info(n)
			if err != nil {
				return nil, nil, err
			}
			for _, a := range info.Aliases {
				t.aliases = append(t.aliases, aliasEntry{a, n})
			}
		}
	}
	seen := map[string]bool{}
	for _, a := range t.aliases {
		if !seen[a.module] && MatchAlias(a.pattern, s) {
			seen[a.module] = true
			files = append(files, a.module)
		}
	}
	var bnames []string
	for n := range t.builtinAliases {
		bnames = append(bnames, n)
	}
	sort.Strings(bnames)
	for _, n := range bnames {
		for _, a := range t.builtinAliases[n] {
			if MatchAlias(a, s) {
				builtins = append(builtins, n)
				break
			}
		}
	}
	return files, builtins, nil
}

// Resolution is what a list of requested module names comes to.
type Resolution struct {
	// Modules are the module files to ship: the requested modules and
	// everything they need, dependencies before the modules that need
	// them, in a stable order.
	Modules []Module
	// Load are the requested names that resolved to shipped modules, as
	// kernel module names, in the order requested, without repeats: the
	// list to load at boot.
	Load []string
	// Builtin are the requested names the kernel has built in.
	Builtin []string
	// Missing are requested names that are neither a module file, a
	// built-in module, nor an alias of either.
	Missing []string
	// SoftMissing are soft dependencies that could not be found; modprobe
	// skips those too.
	SoftMissing []string
}

// Resolve finds the modules for names (module names or aliases) and the
// closure of their hard (depends=) and soft (softdep=) dependencies. A
// missing hard dependency of a module that is shipped is an error, since
// that module could never load; a missing requested name is reported in
// Missing for the caller to judge.
func (t *Tree) Resolve(names []string) (*Resolution, error) {
	r := &Resolution{}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	inLoad := map[string]bool{}
	seenOther := map[string]bool{}

	var visit func(name string, chain []string, soft bool) error
	visit = func(name string, chain []string, soft bool) error {
		switch state[name] {
		case 1:
			if soft {
				// A soft dependency back onto a module being visited is
				// an ordering hint, not a cycle that stops loading.
				return nil
			}
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(chain, " -> "), name)
		case 2:
			return nil
		}
		state[name] = 1
		info, err := t.Info(name)
		if err != nil {
			return err
		}
		chain = append(chain, name)
		for _, d := range info.Depends {
			if _, ok := t.paths[d]; ok {
				if err := visit(d, chain, false); err != nil {
					return err
				}
				continue
			}
			if t.builtin[d] {
				continue
			}
			return fmt.Errorf("module %s (%s) depends on %s, which is neither a module file nor built in", name, t.paths[name], d)
		}
		for _, s := range append(append([]string{}, info.SoftPre...), info.SoftPost...) {
			files, builtin, err := t.lookup(s)
			if err != nil {
				return err
			}
			if len(files) == 0 && !builtin {
				if !seenOther["soft:"+s] {
					seenOther["soft:"+s] = true
					r.SoftMissing = append(r.SoftMissing, s)
				}
				continue
			}
			for _, f := range files {
				if err := visit(f, chain, true); err != nil {
					return err
				}
			}
		}
		state[name] = 2
		p := t.paths[name]
		st, err := fs.Stat(t.fsys, p)
		if err != nil {
			return fmt.Errorf("module %s: %w", p, err)
		}
		r.Modules = append(r.Modules, Module{Name: name, Path: p, Size: st.Size(), Info: info})
		return nil
	}

	for _, req := range names {
		req = strings.TrimSpace(req)
		if req == "" {
			continue
		}
		files, builtin, err := t.lookup(req)
		if err != nil {
			return nil, err
		}
		switch {
		case len(files) > 0:
			for _, f := range files {
				if err := visit(f, nil, false); err != nil {
					return nil, err
				}
				if !inLoad[f] {
					inLoad[f] = true
					r.Load = append(r.Load, f)
				}
			}
		case builtin:
			if !seenOther["b:"+req] {
				seenOther["b:"+req] = true
				r.Builtin = append(r.Builtin, Normalize(req))
			}
		default:
			if !seenOther["m:"+req] {
				seenOther["m:"+req] = true
				r.Missing = append(r.Missing, req)
			}
		}
	}
	return r, nil
}

// lookup resolves a module name or alias to module files, or to a built-in.
func (t *Tree) lookup(s string) (files []string, builtin bool, err error) {
	n := Normalize(s)
	if _, ok := t.paths[n]; ok {
		return []string{n}, false, nil
	}
	if t.builtin[n] {
		return nil, true, nil
	}
	files, builtins, err := t.byAlias(s)
	if err != nil {
		return nil, false, err
	}
	if len(builtins) > 0 {
		// The kernel already serves the alias; modprobe would be content.
		return nil, true, nil
	}
	return files, false, nil
}

// DepFile returns modules.dep for the given modules in depmod's format:
// one line per module, "path: dep dep ...", paths relative to the version
// directory, each module's full set of hard dependencies listed with the
// ones that must be loaded last first (load from the end of the line back).
// Lines are sorted by path. Dependencies outside mods (built-ins) are left out.
func DepFile(mods []Module) []byte {
	byName := make(map[string]Module, len(mods))
	for _, m := range mods {
		byName[m.Name] = m
	}
	sorted := append([]Module(nil), mods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })

	var b strings.Builder
	for _, m := range sorted {
		// Post-order walk gives load order (dependencies first).
		var order []string
		seen := map[string]bool{m.Name: true}
		var walk func(n string)
		walk = func(n string) {
			for _, d := range byName[n].Info.Depends {
				if _, ok := byName[d]; !ok || seen[d] {
					continue
				}
				seen[d] = true
				walk(d)
				order = append(order, d)
			}
		}
		walk(m.Name)
		b.WriteString(m.Path)
		b.WriteString(":")
		for i := len(order) - 1; i >= 0; i-- {
			b.WriteString(" ")
			b.WriteString(byName[order[i]].Path)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// AliasFile returns modules.alias for the given modules: "alias PATTERN
// module" lines, modules sorted by path, each module's aliases in the order
// its .modinfo lists them.
func AliasFile(mods []Module) []byte {
	sorted := append([]Module(nil), mods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var b strings.Builder
	b.WriteString("# Aliases extracted from modules themselves.\n")
	for _, m := range sorted {
		for _, a := range m.Info.Aliases {
			fmt.Fprintf(&b, "alias %s %s\n", a, m.Name)
		}
	}
	return []byte(b.String())
}

// SoftdepFile returns modules.softdep for the given modules: "softdep module
// pre: a b post: c" for each module that has soft dependencies.
func SoftdepFile(mods []Module) []byte {
	sorted := append([]Module(nil), mods...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	var b strings.Builder
	b.WriteString("# Soft dependencies extracted from modules themselves.\n")
	for _, m := range sorted {
		if len(m.Info.SoftPre) == 0 && len(m.Info.SoftPost) == 0 {
			continue
		}
		b.WriteString("softdep " + m.Name)
		if len(m.Info.SoftPre) > 0 {
			b.WriteString(" pre: " + strings.Join(m.Info.SoftPre, " "))
		}
		if len(m.Info.SoftPost) > 0 {
			b.WriteString(" post: " + strings.Join(m.Info.SoftPost, " "))
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}
