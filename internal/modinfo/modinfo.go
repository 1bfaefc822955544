// Package modinfo reads what a Linux kernel module says about itself in its
// .modinfo ELF section (name, dependencies, aliases, soft dependencies,
// vermagic), and works out what depmod would: the set of module files an
// image needs for a list of module names, and the modules.dep, modules.alias
// and modules.softdep files that describe them.
//
// It is pure Go: no kmod, no depmod, no syscalls, so it runs and tests on any
// host. Modules are read through an fs.FS rooted at a kernel's
// /lib/modules/<version> directory.
package modinfo

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// SectionName is the ELF section that carries a module's key=value strings.
const SectionName = ".modinfo"

// ErrNoModinfo is returned for an ELF file without a .modinfo section.
var ErrNoModinfo = errors.New("no " + SectionName + " section")

// Info is what a module's .modinfo section says, in the order it says it.
type Info struct {
	// Name is the module's name= entry (the kernel's name for it, with
	// underscores). Empty for old modules that carry no name= entry.
	Name string
	// Depends are the modules this one needs loaded first (depends=).
	Depends []string
	// Aliases are the modalias patterns (alias=) the module serves.
	Aliases []string
	// SoftPre and SoftPost are the softdep= "pre:" and "post:" modules.
	SoftPre, SoftPost []string
	// Vermagic is the vermagic= string; its first word is the kernel release.
	Vermagic string
	// License is the license= entry (the first one, if several).
	License string
}

// Release returns the kernel release the module was built for: the first
// word of its vermagic, or "".
func (i Info) Release() string {
	f := strings.Fields(i.Vermagic)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// Parse decodes the contents of a .modinfo section: NUL-separated key=value
// strings, possibly padded with extra NULs. Entries without '=' are ignored.
func Parse(section []byte) (Info, error) {
	var info Info
	for _, raw := range bytes.Split(section, []byte{0}) {
		if len(raw) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(raw), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			info.Name = v
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					info.Depends = append(info.Depends, Normalize(d))
				}
			}
		case "alias":
			info.Aliases = append(info.Aliases, v)
		case "softdep":
			pre, post := ParseSoftdep(v)
			info.SoftPre = append(info.SoftPre, pre...)
			info.SoftPost = append(info.SoftPost, post...)
		case "vermagic":
			info.Vermagic = v
		case "license":
			if info.License == "" {
				info.License = v
			}
		}
	}
	return info, nil
}

// ParseSoftdep splits a softdep value, "pre: a b post: c", into its pre and
// post module lists. Words before the first "pre:" or "post:" (as some
// modules write, e.g. "softdep=gcm") are ignored, as kmod ignores them.
func ParseSoftdep(v string) (pre, post []string) {
	var cur *[]string
	for _, w := range strings.Fields(v) {
		switch w {
		case "pre:":
			cur = &pre
		case "post:":
			cur = &post
		default:
			if cur == nil {
				continue
			}
			*cur = append(*cur, Normalize(w))
		}
	}
	return pre, post
}

// Read reads the .modinfo section of the ELF module in r.
func Read(r io.ReaderAt) (Info, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return Info{}, fmt.Errorf("not an ELF module: %w", err)
	}
	defer f.Close()
	s := f.Section(SectionName)
	if s == nil {
		return Info{}, ErrNoModinfo
	}
	if s.Type == elf.SHT_NOBITS {
		return Info{}, fmt.Errorf("%s section has no data: %w", SectionName, ErrNoModinfo)
	}
	data, err := s.Data()
	if err != nil {
		return Info{}, fmt.Errorf("reading %s: %w", SectionName, err)
	}
	return Parse(data)
}

// Normalize returns the kernel's form of a module name: dashes become
// underscores, as the kernel and kmod treat them as the same character.
func Normalize(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// moduleSuffixes are the file name endings of modules, compressed or not.
var moduleSuffixes = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

// NameFromPath returns the module name for a module file path
// ("kernel/drivers/char/hw_random/virtio-rng.ko" gives "virtio_rng") and
// whether the path names a module file at all.
func NameFromPath(p string) (string, bool) {
	base := path.Base(p)
	for _, s := range moduleSuffixes {
		if strings.HasSuffix(base, s) && len(base) > len(s) {
			return Normalize(strings.TrimSuffix(base, s)), true
		}
	}
	return "", false
}

// ParseBuiltin reads a modules.builtin file (one module path per line, such
// as "kernel/fs/ext4/ext4.ko") and returns the names of the built-in modules.
func ParseBuiltin(data []byte) map[string]bool {
	out := make(map[string]bool)
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if n, ok := NameFromPath(line); ok {
			out[n] = true
		}
	}
	return out
}

// ParseBuiltinModinfo reads a modules.builtin.modinfo file
// ("module.key=value" strings separated by NULs) and returns the aliases of
// each built-in module, keyed by module name.
func ParseBuiltinModinfo(data []byte) map[string][]string {
	out := make(map[string][]string)
	for _, raw := range bytes.Split(data, []byte{0}) {
		mk, v, ok := strings.Cut(string(raw), "=")
		if !ok {
			continue
		}
		mod, key, ok := strings.Cut(mk, ".")
		if !ok || key != "alias" {
			continue
		}
		mod = Normalize(mod)
		out[mod] = append(out[mod], v)
	}
	return out
}

// MatchAlias reports whether the modalias (or a name given where a module
// name was expected) matches an alias pattern, as kmod does with fnmatch.
// Dashes and underscores are the same character outside bracket expressions.
func MatchAlias(pattern, s string) bool {
	pattern, s = normalizeAlias(pattern), normalizeAlias(s)
	if pattern == s {
		return true
	}
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// normalizeAlias turns dashes into underscores outside [...] expressions, as
// kmod does before it compares aliases.
func normalizeAlias(s string) string {
	b := []byte(s)
	inBracket := false
	for i, c := range b {
		switch {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case c == '-' && !inBracket:
			b[i] = '_'
		}
	}
	return string(b)
}
