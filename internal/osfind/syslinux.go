package osfind

import (
	"fmt"
	"path"
	"strings"
)

// syslinuxConfigs are where syslinux, extlinux and isolinux configs are
// looked for, in order.
var syslinuxConfigs = []string{
	"/boot/extlinux/extlinux.conf",
	"/extlinux/extlinux.conf",
	"/boot/syslinux/syslinux.cfg",
	"/syslinux/syslinux.cfg",
	"/boot/isolinux/isolinux.cfg",
	"/isolinux/isolinux.cfg",
	"/extlinux.conf",
	"/syslinux.cfg",
}

// sysLabel is one LABEL of a syslinux config.
type sysLabel struct {
	name, title string
	kernel      string
	notLinux    bool // KERNEL x.c32, COM32, LOCALBOOT...: no Linux kernel
	appendSet   bool
	append      string
	initrd      string
	dir         string // the working directory, for relative paths
}

// sysConfig is what a syslinux config (with its INCLUDEs) says.
type sysConfig struct {
	labels      []*sysLabel
	globalApp   string
	def         string // DEFAULT
	menuDefault string // MENU DEFAULT
	onTimeout   string // ONTIMEOUT
}

// syslinux finds the first syslinux config on fsys and adds its entries,
// the default first.
func (s *scanner) syslinux(fsys *FS) {
	for _, p := range syslinuxConfigs {
		f := on(fsys, p)
		if !f.exists() {
			continue
		}
		cfg := &sysConfig{}
		// "The initial working directory is the directory containing the
		// initial configuration file", says syslinux's wiki.
		if err := cfg.read(f, path.Dir(f.Path), 0); err != nil {
			s.problems = append(s.problems, err)
			return
		}
		def := cfg.defaultLabel()
		var entries []Entry
		for _, l := range cfg.labels {
			if l.notLinux || l.kernel == "" {
				continue
			}
			e := cfg.entry(f, l)
			e.Default = l == def
			entries = append(entries, e)
		}
		s.addConfig(entries)
		return
	}
}

func (c *sysConfig) read(f File, wd string, depth int) error {
	if depth >= maxDepth {
		return fmt.Errorf("%s: INCLUDEs nested more than %d deep", f, maxDepth)
	}
	b, err := f.ReadFile()
	if err != nil {
		return err
	}
	var cur *sysLabel
	inText := false
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		key := strings.ToLower(fields[0])
		if inText {
			inText = key != "endtext"
			continue
		}
		rest := strings.TrimSpace(line[len(fields[0]):])
		switch key {
		case "label":
			cur = &sysLabel{name: rest, dir: wd}
			c.labels = append(c.labels, cur)
		case "kernel", "linux":
			if cur == nil {
				continue
			}
			k, _, _ := strings.Cut(rest, " ")
			cur.kernel = k
			cur.notLinux = key == "kernel" && strings.HasSuffix(strings.ToLower(k), ".c32")
		case "com32", "comboot", "boot", "bss", "pxe", "fdimage", "localboot", "config":
			if cur != nil {
				cur.notLinux = true
			}
		case "append":
			if rest == "-" {
				rest = ""
			}
			if cur == nil {
				c.globalApp = rest
			} else {
				cur.append, cur.appendSet = rest, true
			}
		case "initrd":
			if cur != nil {
				cur.initrd = rest
			}
		case "default":
			c.def = rest
		case "ontimeout":
			c.onTimeout = rest
		case "include":
			if err := c.read(sysFile(f.FS, wd, rest), wd, depth+1); err != nil {
				return fmt.Errorf("%s line %d: %w", f, n+1, err)
			}
		case "text":
			inText = len(fields) > 1 && strings.EqualFold(fields[1], "help")
		case "menu":
			if len(fields) < 2 {
				continue
			}
			arg := strings.TrimSpace(rest[len(fields[1]):])
			switch strings.ToLower(fields[1]) {
			case "label":
				if cur != nil {
					cur.title = strings.ReplaceAll(arg, "^", "")
				}
			case "default":
				if cur != nil {
					c.menuDefault = cur.name
				}
			case "include":
				if err := c.read(sysFile(f.FS, wd, arg), wd, depth+1); err != nil {
					return fmt.Errorf("%s line %d: %w", f, n+1, err)
				}
			}
		}
	}
	return nil
}

// sysFile resolves a syslinux path: absolute from the filesystem's root,
// relative from the working directory.
func sysFile(fsys *FS, wd, p string) File {
	if !strings.HasPrefix(p, "/") {
		p = path.Join(wd, p)
	}
	return on(fsys, p)
}

// defaultLabel is what boots without a person at the menu: ONTIMEOUT, else
// MENU DEFAULT, else DEFAULT when it names a label, else the first label.
func (c *sysConfig) defaultLabel() *sysLabel {
	for _, name := range []string{c.onTimeout, c.menuDefault, c.def} {
		if name == "" {
			continue
		}
		for _, l := range c.labels {
			if l.name == name {
				return l
			}
		}
		for _, l := range c.labels {
			if strings.EqualFold(l.name, name) {
				return l
			}
		}
	}
	if len(c.labels) > 0 {
		return c.labels[0]
	}
	return nil
}

func (c *sysConfig) entry(cfg File, l *sysLabel) Entry {
	e := Entry{Name: l.title, ID: l.name, Kind: Syslinux, Source: cfg, Kernel: sysFile(cfg.FS, l.dir, l.kernel)}
	if e.Name == "" {
		e.Name = l.name
	}
	app := c.globalApp
	if l.appendSet {
		app = l.append
	}
	initrd := l.initrd
	var args []string
	for _, a := range strings.Fields(app) {
		// initrd= in APPEND names the initrds, as INITRD does.
		if v, ok := strings.CutPrefix(a, "initrd="); ok {
			if initrd == "" {
				initrd = v
			}
			continue
		}
		args = append(args, a)
	}
	for _, i := range strings.Split(initrd, ",") {
		if i = strings.TrimSpace(i); i != "" {
			e.Initrds = append(e.Initrds, sysFile(cfg.FS, l.dir, i))
		}
	}
	e.Cmdline = strings.Join(args, " ")
	return e
}
