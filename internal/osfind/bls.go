package osfind

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// blsDirs are where Boot Loader Specification entries live: a boot
// partition's /loader/entries, or the root filesystem's /boot/loader/entries.
var blsDirs = []string{"/loader/entries", "/boot/loader/entries"}

// blsGrubenvs are the GRUB environment blocks whose variables ($kernelopts)
// BLS entries may name, as Fedora's do.
var blsGrubenvs = []string{"/grub2/grubenv", "/boot/grub2/grubenv", "/grub/grubenv", "/boot/grub/grubenv"}

// blsEntry is one /loader/entries/ID.conf.
type blsEntry struct {
	id      string
	file    File
	fields  map[string]string
	options []string // every options line
	initrds []string // every initrd line's files
}

func (e *blsEntry) title() string {
	if t := e.fields["title"]; t != "" {
		return t
	}
	return e.id
}

// readBLS reads the BLS entries of fsys, sorted as systemd-boot and GRUB's
// blscfg sort them: by sort-key, then machine-id, then newest version, and
// the entries with no sort-key by their file names, newest first.
func readBLS(fsys *FS) ([]*blsEntry, []error) {
	var (
		entries  []*blsEntry
		problems []error
	)
	for _, dir := range blsDirs {
		matches, err := filepath.Glob(filepath.Join(fsys.Dir, dir, "*.conf"))
		if err != nil || len(matches) == 0 {
			continue
		}
		for _, m := range matches {
			f := on(fsys, path.Join(dir, filepath.Base(m)))
			e, err := parseBLS(f)
			if err != nil {
				problems = append(problems, err)
				continue
			}
			entries = append(entries, e)
		}
		break
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		ka, kb := a.fields["sort-key"], b.fields["sort-key"]
		if (ka == "") != (kb == "") {
			return ka != ""
		}
		if ka == "" {
			return compareVersions(a.id, b.id) > 0
		}
		if ka != kb {
			return ka < kb
		}
		if ma, mb := a.fields["machine-id"], b.fields["machine-id"]; ma != mb {
			return ma < mb
		}
		if c := compareVersions(a.fields["version"], b.fields["version"]); c != 0 {
			return c > 0
		}
		return compareVersions(a.id, b.id) > 0
	})
	return entries, problems
}

// parseBLS reads one entry file: KEY VALUE lines, # comments.
func parseBLS(f File) (*blsEntry, error) {
	b, err := f.ReadFile()
	if err != nil {
		return nil, err
	}
	e := &blsEntry{id: strings.TrimSuffix(path.Base(f.Path), ".conf"), file: f, fields: map[string]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key := strings.Fields(line)[0]
		value := strings.TrimSpace(line[len(key):])
		switch key {
		case "options":
			e.options = append(e.options, value)
		case "initrd":
			e.initrds = append(e.initrds, strings.Fields(value)...)
		default:
			e.fields[key] = value
		}
	}
	if e.fields["linux"] == "" {
		if e.fields["efi"] != "" {
			return nil, fmt.Errorf("%s: an EFI program (efi %s), not a Linux kernel", f, e.fields["efi"])
		}
		return nil, fmt.Errorf("%s: no linux line", f)
	}
	if arch := e.fields["architecture"]; arch != "" && arch != "x64" && arch != "x86-64" && arch != "x86_64" {
		return nil, fmt.Errorf("%s: architecture %s", f, arch)
	}
	return e, nil
}

// path resolves a path of the entry: relative to the filesystem the entry
// is on, or, for entries in /boot/loader/entries, to /boot.
func (e *blsEntry) path(p string) File {
	f := on(e.file.FS, p)
	if strings.HasPrefix(e.file.Path, "/boot/") && !f.exists() {
		if g := on(e.file.FS, "/boot/"+p); g.exists() {
			return g
		}
	}
	return f
}

// entry is what the BLS entry boots; get expands the $variables of options.
func (e *blsEntry) entry(get func(string) string) Entry {
	out := Entry{Name: e.title(), ID: e.id, Kind: BLS, Source: e.file, Kernel: e.path(e.fields["linux"])}
	for _, i := range e.initrds {
		if !strings.HasPrefix(i, "$") { // $tuned_initrd and the like: GRUB's, empty here
			out.Initrds = append(out.Initrds, e.path(i))
		}
	}
	var opts []string
	for _, o := range e.options {
		opts = append(opts, strings.Fields(expandVars(o, get))...)
	}
	out.Cmdline = strings.Join(opts, " ")
	return out
}

// expandVars replaces $NAME and ${NAME} in s with get's values.
func expandVars(s string, get func(string) string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		s = s[i+1:]
		var name string
		if strings.HasPrefix(s, "{") {
			end := strings.IndexByte(s, '}')
			if end < 0 {
				b.WriteString("$")
				continue
			}
			name, s = s[1:end], s[end+1:]
		} else {
			n := 0
			for n < len(s) && isNameByte(s[n]) {
				n++
			}
			if n == 0 {
				b.WriteString("$")
				continue
			}
			name, s = s[:n], s[n:]
		}
		b.WriteString(get(name))
	}
}

// bls adds the BLS entries of fsys, the loader.conf default first, with
// the variables of a GRUB environment block on it.
func (s *scanner) bls(fsys *FS) {
	entries, problems := readBLS(fsys)
	s.problems = append(s.problems, problems...)
	if len(entries) == 0 {
		return
	}
	env := map[string]string{}
	for _, p := range blsGrubenvs {
		if b, err := on(fsys, p).ReadFile(); err == nil {
			env = parseGrubenv(b)
			break
		}
	}
	get := func(name string) string { return env[name] }
	def := -1
	for _, conf := range []string{"/loader/loader.conf", "/boot/loader/loader.conf"} {
		b, err := on(fsys, conf).ReadFile()
		if err != nil {
			continue
		}
		pattern := loaderDefault(string(b))
		for i, e := range entries {
			ok1, _ := path.Match(pattern, e.id)
			ok2, _ := path.Match(pattern, e.id+".conf")
			if ok1 || ok2 {
				def = i
				break
			}
		}
		break
	}
	var out []Entry
	for i, e := range entries {
		o := e.entry(get)
		o.Default = i == def
		out = append(out, o)
	}
	s.addConfig(out)
}

// loaderDefault returns the default pattern of systemd-boot's loader.conf.
func loaderDefault(conf string) string {
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "default" {
			return f[1]
		}
	}
	return ""
}
