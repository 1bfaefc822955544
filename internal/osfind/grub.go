package osfind

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// grubConfigs are where GRUB's config is looked for on a filesystem, in
// order: the root filesystem's /boot, a separate /boot partition. An EFI
// system partition's EFI/*/grub.cfg comes after them; it usually loads one
// of the others, and the entries found twice are kept once.
var grubConfigs = []string{
	"/boot/grub/grub.cfg",
	"/grub/grub.cfg",
	"/boot/grub2/grub.cfg",
	"/grub2/grub.cfg",
}

// maxDepth bounds configfile, source and function calls, against loops.
const maxDepth = 16

// maxSteps bounds the statements one config runs, menu entries included:
// a config whose functions call themselves over and over ends instead of
// hanging the boot.
const maxSteps = 100000

// grub finds the first GRUB config on fsys, runs it, and adds its entries,
// the default first.
func (s *scanner) grub(fsys *FS) {
	cfgs := append([]string{}, grubConfigs...)
	if efi, err := filepath.Glob(filepath.Join(fsys.Dir, "[Ee][Ff][Ii]", "*", "grub.cfg")); err == nil {
		sort.Strings(efi)
		for _, p := range efi {
			if rel, err := filepath.Rel(fsys.Dir, p); err == nil {
				cfgs = append(cfgs, "/"+filepath.ToSlash(rel))
			}
		}
	}
	for _, p := range cfgs {
		f := on(fsys, p)
		if !f.exists() {
			continue
		}
		s.runGrub(f)
		return
	}
}

// grubVM runs one config: its variables, functions, and the menu it builds.
type grubVM struct {
	s     *scanner
	cfg   File // the config being read, for messages
	fs    *FS  // the filesystem the first config was on: root's default
	env   map[string]string
	funcs map[string][]stmt
	menu  *grubMenu
	depth int
	// While a menu entry's body runs, what it loads.
	load *grubLoad
	// steps counts the statements run, against maxSteps.
	steps *int
}

type grubMenu struct {
	items []*grubItem
}

// grubItem is a menuentry, a submenu, or an entry blscfg made.
type grubItem struct {
	title, id string
	sub       *grubMenu
	body      []stmt    // menuentry
	bls       *blsEntry // blscfg
	cfg       File      // where it was defined
}

// grubLoad is what a menu entry's body loaded.
type grubLoad struct {
	kernel  *File
	image   string // the kernel as the linux command named it
	args    []string
	initrds []File
}

// runGrub runs the config f and adds the entries of its menu.
func (s *scanner) runGrub(f File) {
	vm := &grubVM{
		s:     s,
		cfg:   f,
		fs:    f.FS,
		env:   grubDefaults(f),
		funcs: map[string][]stmt{},
		menu:  &grubMenu{},
		steps: new(int),
	}
	if err := vm.source(f); err != nil {
		s.problems = append(s.problems, err)
		return
	}
	if *vm.steps > maxSteps {
		s.problems = append(s.problems, fmt.Errorf("%s: stopped after %d statements", f, maxSteps))
		return
	}
	// GRUB runs an entry's body when it boots it, with the variables as
	// the whole config left them.
	type flat struct {
		item *grubItem
		path []MenuItem // from the top menu down
	}
	var all []flat
	var walk func(m *grubMenu, prefix []MenuItem)
	walk = func(m *grubMenu, prefix []MenuItem) {
		for i, it := range m.items {
			p := append(append([]MenuItem{}, prefix...), MenuItem{Index: i, Title: it.title, ID: it.id})
			if it.sub != nil {
				walk(it.sub, p)
				continue
			}
			all = append(all, flat{it, p})
		}
	}
	walk(vm.menu, nil)
	// The default is the entry $default names, or the first one of the
	// submenu it names; GRUB boots the first entry when it names nothing.
	def := vm.defaultPath()
	defIdx := 0
	for i, fl := range all {
		if len(fl.path) >= len(def) && pathIs(fl.path[:len(def)], def) {
			defIdx = i
			break
		}
	}
	var entries []Entry
	for i, fl := range all {
		e, ok := vm.entry(fl.item)
		if !ok {
			continue
		}
		e.Menu = fl.path
		e.Default = i == defIdx
		entries = append(entries, e)
	}
	s.addConfig(entries)
}

// pathIs says whether a menu path has the indices idx.
func pathIs(p []MenuItem, idx []int) bool {
	if len(p) != len(idx) {
		return false
	}
	for i := range p {
		if p[i].Index != idx[i] {
			return false
		}
	}
	return true
}

// grubDefaults are the variables GRUB sets before it reads its config: a
// current GRUB on a PC, the config's filesystem as root and its directory
// as prefix.
func grubDefaults(cfg File) map[string]string {
	return map[string]string{
		"root":                         cfg.FS.Dev,
		"prefix":                       "(" + cfg.FS.Dev + ")" + path.Dir(cfg.Path),
		"grub_platform":                "pc",
		"grub_cpu":                     "i386",
		"feature_menuentry_id":         "y",
		"feature_platform_search_hint": "y",
		"feature_default_font_path":    "y",
		"feature_all_video_module":     "y",
		"feature_timeout_style":        "y",
		"feature_200_final":            "y",
		"feature_nativedisk_cmd":       "y",
	}
}

func (vm *grubVM) get(name string) string { return vm.env[name] }

// expand turns words into strings with the current variables.
func (vm *grubVM) expand(ws []gword) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.expand(vm.get)...)
	}
	return out
}

// file resolves a GRUB path: (device)/path, or /path on $root.
func (vm *grubVM) file(p string) File {
	fsys := vm.rootFS()
	if strings.HasPrefix(p, "(") {
		if end := strings.IndexByte(p, ')'); end > 0 {
			if d := vm.s.device(p[1:end]); d != nil {
				fsys = d
			}
			p = p[end+1:]
		}
	}
	return on(fsys, p)
}

// rootFS is the filesystem $root names; the config's own when GRUB's name
// for it is not one osfind can map.
func (vm *grubVM) rootFS() *FS {
	if d := vm.s.device(vm.env["root"]); d != nil {
		return d
	}
	return vm.fs
}

// source reads the config f and runs it in vm.
func (vm *grubVM) source(f File) error {
	if vm.depth >= maxDepth {
		return fmt.Errorf("%s: configs nested more than %d deep", f, maxDepth)
	}
	b, err := f.ReadFile()
	if err != nil {
		return err
	}
	stmts, err := parseGrub(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	saved := vm.cfg
	vm.cfg = f
	vm.depth++
	vm.run(stmts)
	vm.depth--
	vm.cfg = saved
	return nil
}

// run runs statements and returns the status of the last one (true: 0).
func (vm *grubVM) run(stmts []stmt) bool {
	ok := true
	for _, st := range stmts {
		ok = vm.exec(st)
		vm.env["?"] = "0"
		if !ok {
			vm.env["?"] = "1"
		}
	}
	return ok
}

func (vm *grubVM) exec(st stmt) bool {
	if *vm.steps++; *vm.steps > maxSteps {
		return false
	}
	switch st.kind {
	case sIf:
		for i, cond := range st.conds {
			if vm.run(cond) {
				return vm.run(st.thens[i])
			}
		}
		return vm.run(st.els)
	case sLoop:
		return true
	case sBlock:
		if len(st.args) == 0 {
			return vm.run(st.body)
		}
		switch st.args[0].text() {
		case "function":
			if names := st.args[1].expand(vm.get); len(names) == 1 {
				vm.funcs[names[0]] = st.body
			}
		case "menuentry", "submenu":
			vm.menuItem(st)
		}
		return true
	}
	if len(st.args) == 0 {
		return true
	}
	// NAME=VALUE assigns, as set does.
	if first := st.args[0]; len(first.parts) > 0 && !first.parts[0].isVar {
		if name, _, ok := strings.Cut(first.parts[0].s, "="); ok && isVarName(name) && !first.parts[0].quoted {
			vm.assign(strings.Join(first.expand(vm.get), ""))
			return true
		}
	}
	args := vm.expand(st.args)
	if len(args) == 0 {
		return true
	}
	return vm.command(args[0], args[1:])
}

func isVarName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isNameByte(c) {
			return false
		}
	}
	return true
}

func (vm *grubVM) assign(kv string) {
	name, value, ok := strings.Cut(kv, "=")
	if ok && isVarName(name) {
		vm.env[name] = value
	}
}

// command runs one simple command; the commands that do not matter for
// finding what to boot (insmod, echo, terminal_output...) succeed and do
// nothing.
func (vm *grubVM) command(name string, args []string) bool {
	switch name {
	case "set":
		for _, a := range args {
			vm.assign(a)
		}
	case "unset":
		for _, a := range args {
			delete(vm.env, a)
		}
	case "true":
	case "false", "keystatus":
		return false
	case "[", "test":
		if name == "[" {
			if len(args) == 0 || args[len(args)-1] != "]" {
				return false
			}
			args = args[:len(args)-1]
		}
		return vm.test(args)
	case "search", "search.fs_uuid", "search.fs_label", "search.file":
		return vm.search(name, args)
	case "load_env":
		vm.loadEnv(args)
	case "source", "configfile":
		if len(args) == 0 {
			return false
		}
		if err := vm.source(vm.file(args[0])); err != nil {
			vm.s.problems = append(vm.s.problems, fmt.Errorf("%s: %s: %w", vm.cfg, name, err))
			return false
		}
	case "blscfg":
		vm.blscfg()
	case "linux", "linuxefi", "linux16":
		if vm.load == nil || len(args) == 0 {
			return false
		}
		k := vm.file(args[0])
		// Any initrd must be loaded again after linux, says GRUB's manual.
		*vm.load = grubLoad{kernel: &k, image: args[0], args: args[1:]}
	case "initrd", "initrdefi", "initrd16":
		if vm.load == nil {
			return false
		}
		vm.load.initrds = nil
		for _, a := range args {
			if strings.HasPrefix(a, "--") {
				continue
			}
			vm.load.initrds = append(vm.load.initrds, vm.file(a))
		}
	default:
		// chainloader, multiboot and the like boot no Linux kernel: an
		// entry with only those is left out.
		if body, ok := vm.funcs[name]; ok && vm.depth < maxDepth {
			vm.depth++
			defer func() { vm.depth-- }()
			return vm.run(body)
		}
	}
	return true
}

// test is GRUB's test ([): strings, numbers, and files on the filesystems.
func (vm *grubVM) test(args []string) bool {
	// -o binds looser than -a, and both looser than the rest.
	for _, op := range []string{"-o", "-a"} {
		for i, a := range args {
			if a == op && i > 0 && i < len(args)-1 {
				l, r := vm.test(args[:i]), vm.test(args[i+1:])
				if op == "-o" {
					return l || r
				}
				return l && r
			}
		}
	}
	if len(args) > 0 && args[0] == "!" {
		return !vm.test(args[1:])
	}
	switch len(args) {
	case 0:
		return false
	case 1:
		return args[0] != ""
	case 2:
		switch args[0] {
		case "-n":
			return args[1] != ""
		case "-z":
			return args[1] == ""
		case "-e", "-f", "-d", "-s":
			fi, err := vm.file(args[1]).Stat()
			if err != nil {
				return false
			}
			switch args[0] {
			case "-f":
				return fi.Mode().IsRegular()
			case "-d":
				return fi.IsDir()
			case "-s":
				return fi.Size() > 0
			}
			return true
		}
	case 3:
		a, op, b := args[0], args[1], args[2]
		switch op {
		case "=", "==":
			return a == b
		case "!=":
			return a != b
		case "<":
			return a < b
		case ">":
			return a > b
		case "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
			x, err1 := strconv.Atoi(a)
			y, err2 := strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				return false
			}
			switch op {
			case "-eq":
				return x == y
			case "-ne":
				return x != y
			case "-lt":
				return x < y
			case "-le":
				return x <= y
			case "-gt":
				return x > y
			}
			return x >= y
		}
	}
	return false
}

// search finds a filesystem by UUID, label or a file on it, and sets a
// variable (root with --set) to it.
func (vm *grubVM) search(name string, args []string) bool {
	kind := map[string]string{"search.fs_uuid": "uuid", "search.fs_label": "label", "search.file": "file"}[name]
	setVar := ""
	var pos []string
	for _, a := range args {
		switch {
		case a == "-u" || a == "--fs-uuid":
			kind = "uuid"
		case a == "-l" || a == "--label":
			kind = "label"
		case a == "-f" || a == "--file":
			kind = "file"
		case a == "-s" || a == "--set":
			setVar = "root"
		case strings.HasPrefix(a, "--set="):
			setVar = strings.TrimPrefix(a, "--set=")
		case strings.HasPrefix(a, "-"):
			// --no-floppy, --hint*=..., --efidisk-only: for firmware disks.
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) == 0 {
		return false
	}
	// search.fs_uuid UUID VAR: the short forms name the variable after.
	if name != "search" && len(pos) > 1 && setVar == "" {
		setVar = pos[1]
	}
	var found *FS
	switch kind {
	case "uuid":
		found = vm.s.byUUID(pos[0])
	case "label":
		found = vm.s.byLabel(pos[0])
	case "file":
		found = vm.s.byFile(pos[0])
	}
	if found == nil {
		return false
	}
	if setVar != "" {
		vm.env[setVar] = found.Dev
	}
	return true
}

// loadEnv reads a grubenv file ($prefix/grubenv unless -f names one).
func (vm *grubVM) loadEnv(args []string) {
	file := vm.env["prefix"] + "/grubenv"
	var only []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-f" || a == "--file":
			if i+1 < len(args) {
				file = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--file="):
			file = strings.TrimPrefix(a, "--file=")
		case strings.HasPrefix(a, "-"):
		default:
			only = append(only, a)
		}
	}
	b, err := vm.file(file).ReadFile()
	if err != nil {
		return // GRUB goes on without it too
	}
	for k, v := range parseGrubenv(b) {
		if len(only) == 0 || contains(only, k) {
			vm.env[k] = v
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseGrubenv reads GRUB's environment block: NAME=VALUE lines, padded
// with #.
func parseGrubenv(b []byte) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && isVarName(k) {
			env[k] = v
		}
	}
	return env
}

// menuItem adds a menuentry or submenu to the menu being built.
func (vm *grubVM) menuItem(st stmt) {
	args := vm.expand(st.args[1:])
	it := &grubItem{cfg: vm.cfg}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--class" || a == "--users" || a == "--hotkey" || a == "--id":
			if i+1 < len(args) {
				if a == "--id" {
					it.id = args[i+1]
				}
				i++
			}
		case strings.HasPrefix(a, "--id="):
			it.id = strings.TrimPrefix(a, "--id=")
		case strings.HasPrefix(a, "--"):
		case it.title == "":
			it.title = a
		}
	}
	if st.args[0].text() == "submenu" {
		// GRUB runs a submenu's body when it is opened; its entries are
		// only known by running it, in a menu of its own.
		it.sub = &grubMenu{}
		saved := vm.menu
		vm.menu = it.sub
		vm.run(st.body)
		vm.menu = saved
	} else {
		it.body = st.body
	}
	vm.menu.items = append(vm.menu.items, it)
}

// blscfg adds the BLS entries of $root's filesystem to the menu, as
// Fedora's GRUB does.
func (vm *grubVM) blscfg() {
	fsys := vm.rootFS()
	entries, problems := readBLS(fsys)
	vm.s.problems = append(vm.s.problems, problems...)
	vm.s.blsDone[fsys] = true
	for _, e := range entries {
		vm.menu.items = append(vm.menu.items, &grubItem{title: e.title(), id: e.id, bls: e, cfg: e.file})
	}
}

// defaultPath resolves $default (an index, a title or an id; > separates
// submenu levels; "saved" is grubenv's saved_entry) to indices into the
// menu; as far as it names items.
func (vm *grubVM) defaultPath() []int {
	def, ok := vm.env["default"]
	if !ok || def == "" {
		def = "0"
	}
	if def == "saved" {
		def = vm.env["saved_entry"]
	}
	var out []int
	m := vm.menu
	for _, part := range strings.Split(def, ">") {
		if m == nil {
			return out
		}
		idx := -1
		if n, err := strconv.Atoi(part); err == nil && n >= 0 && n < len(m.items) {
			idx = n
		}
		for i, it := range m.items {
			if idx >= 0 {
				break
			}
			if it.title == part || (it.id != "" && it.id == part) {
				idx = i
			}
		}
		if idx < 0 {
			return out
		}
		out = append(out, idx)
		m = m.items[idx].sub
	}
	return out
}

// entry runs a menu entry's body and returns what it boots; ok is false
// for an entry that boots no Linux kernel.
func (vm *grubVM) entry(it *grubItem) (Entry, bool) {
	e := Entry{Name: it.title, ID: it.id, Kind: GRUB, Source: it.cfg}
	env := make(map[string]string, len(vm.env))
	for k, v := range vm.env {
		env[k] = v
	}
	if it.bls != nil {
		be := it.bls.entry(func(name string) string { return env[name] })
		be.Kind, be.Source = GRUB, it.cfg
		return be, true
	}
	run := &grubVM{s: vm.s, cfg: it.cfg, fs: vm.fs, env: env, funcs: vm.funcs, menu: &grubMenu{}, load: &grubLoad{}, steps: new(int)}
	run.run(it.body)
	load := run.load
	if load.kernel == nil {
		return Entry{}, false
	}
	e.Kernel = *load.kernel
	e.Initrds = load.initrds
	e.Cmdline = grubCmdline(load.image, load.args)
	return e, true
}

// grubCmdline is the command line GRUB's linux command gives the kernel:
// BOOT_IMAGE= the kernel as the command named it, then its arguments,
// those with spaces quoted. Tools in the booted system read BOOT_IMAGE
// (which kernel booted), so it is there as GRUB puts it.
func grubCmdline(image string, args []string) string {
	return "BOOT_IMAGE=" + grubJoin(append([]string{image}, args...))
}

// grubJoin joins arguments as GRUB does, quoting those with spaces.
func grubJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t") {
			a = `"` + strings.ReplaceAll(a, `"`, `\"`) + `"`
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
