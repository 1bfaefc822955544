// Package osfind finds the operating systems installed on a machine's
// filesystems, as a boot loader would: the entries of GRUB configs
// (grub.cfg, grub2), syslinux, extlinux and isolinux configs, Boot Loader
// Specification entries (/loader/entries/*.conf), and, on a filesystem with
// none of those, the kernels of a plain /boot (vmlinuz-VERSION with its
// initrd, newest first). Each entry is a kernel, its initrds and a command
// line, as files on the filesystems it was given.
//
// The parsers read directory trees only (a filesystem is a directory here),
// so they are tested on temporary trees. Devices, mounting and loading the
// kernel with kexec_file_load(2) are in the _linux.go files.
//
// u-root's pkg/boot parsers are not used: they hand back kernels as readers
// fetched through URL schemes (which links an HTTP client), read GRUB
// configs line by line without if/else, functions or set root, and take
// BLS entries without loader.conf's default. Here an entry is files on the
// filesystems, which kexec_file_load reads where they are.
package osfind

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/ginit-dev/ginit/internal/rootpath"
)

// FS is one filesystem to look at: where it is, and what it is.
type FS struct {
	Dev   string // the device, /dev/vda1: what messages and root= name
	Dir   string // where its files are (the mount point)
	Type  string // ext4, vfat, ...
	UUID  string // filesystem UUID, as GRUB's search --fs-uuid and root=UUID= know it
	Label string // filesystem label
	// Disk is the index of the filesystem's disk among the machine's disks
	// (GRUB's hdN), and Part its partition number (0: the whole disk). They
	// resolve GRUB device names such as (hd0,gpt2); Disk is -1 when unknown.
	Disk, Part int
}

func (f *FS) String() string {
	if f.Dev != "" {
		return f.Dev
	}
	return f.Dir
}

// File is a file on one of the filesystems.
type File struct {
	FS   *FS
	Path string // absolute and clean, inside FS
}

func (f File) String() string {
	if f.FS == nil {
		return f.Path
	}
	return f.FS.String() + ":" + f.Path
}

// HostPath is where the file is now: its path under FS.Dir, with symbolic
// links followed inside the filesystem (an absolute link stays in it).
func (f File) HostPath() (string, error) {
	p, err := rootpath.Resolve(f.FS.Dir, f.Path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", f, err)
	}
	return p, nil
}

// Stat returns the file's information, following links inside its
// filesystem.
func (f File) Stat() (fs.FileInfo, error) {
	p, err := f.HostPath()
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, unwrapPath(err))
	}
	return fi, nil
}

// ReadFile reads the whole file.
func (f File) ReadFile() ([]byte, error) {
	p, err := f.HostPath()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, unwrapPath(err))
	}
	return b, nil
}

// Open opens the file for reading.
func (f File) Open() (*os.File, error) {
	p, err := f.HostPath()
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, unwrapPath(err))
	}
	return fh, nil
}

// exists says whether f is a regular file (after links).
func (f File) exists() bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}

// unwrapPath drops the host path from an *fs.PathError: messages name the
// file as device:path instead.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// on returns the file p on fsys; p is taken as absolute in it.
func on(fsys *FS, p string) File {
	return File{FS: fsys, Path: path.Clean("/" + p)}
}

// Kind is where an entry came from.
type Kind string

// The kinds of entries.
const (
	GRUB     Kind = "grub"
	BLS      Kind = "bls"
	Syslinux Kind = "syslinux"
	Plain    Kind = "boot" // a plain /boot directory
)

// Entry is one way to boot an operating system.
type Entry struct {
	Name    string // the title its boot menu shows
	ID      string // GRUB's --id, or the BLS entry's file name; may be empty
	Kind    Kind
	Source  File // the config (or /boot directory) it was found in
	Default bool // the config's default entry
	Kernel  File
	Initrds []File
	Cmdline string
	// Menu is where a GRUB entry sits in its config's menu, from the top
	// menu down to the entry itself: what GRUB_DEFAULT's A>B paths name.
	// Empty for the other kinds.
	Menu []MenuItem
}

// MenuItem is one level of a GRUB menu path: the item's index in its menu
// (counting every item, those that boot no Linux too), its title and id.
type MenuItem struct {
	Index     int
	Title, ID string
}

func (e Entry) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: kernel %s", e.Brief(), e.Kernel)
	for _, i := range e.Initrds {
		fmt.Fprintf(&b, " initrd %s", i)
	}
	fmt.Fprintf(&b, " cmdline %q", e.Cmdline)
	return b.String()
}

// Brief names an entry without what it boots: its title, kind, config,
// and for a GRUB entry its id and, in a submenu, its menu path: what
// -entry and osboot.entry= take besides the entry's number.
func (e Entry) Brief() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s %s", e.Name, e.Kind, e.Source)
	if e.Default {
		b.WriteString(", default")
	}
	if len(e.Menu) > 1 {
		fmt.Fprintf(&b, ", menu %s", e.MenuPath())
	}
	if e.ID != "" && e.Kind == GRUB {
		fmt.Fprintf(&b, ", id %s", e.ID)
	}
	b.WriteString(")")
	return b.String()
}

// MenuPath is a GRUB entry's place in its menu as GRUB_DEFAULT writes it
// with numbers: 1>0 is the first entry of the second item's submenu.
func (e Entry) MenuPath() string {
	idx := make([]string, len(e.Menu))
	for i, m := range e.Menu {
		idx[i] = strconv.Itoa(m.Index)
	}
	return strings.Join(idx, ">")
}

// boots identifies what an entry boots: its kernel, initrds and command
// line.
func (e Entry) boots() string {
	k := e.Kernel.String()
	for _, i := range e.Initrds {
		k += "\x00" + i.String()
	}
	return k + "\x00" + e.Cmdline
}

// identity is an entry as a menu names it and what it boots: the same
// entry found twice (an EFI system partition's grub.cfg that loads the
// root's own) has one identity, and is kept once. Entries that boot the
// same but are named apart (Debian's top entry and its twin in the
// submenu) stay apart, each selectable by its own title, id and path.
func (e Entry) identity() string {
	k := string(e.Kind) + "\x00" + e.Source.String() + "\x00" + e.Name + "\x00" + e.ID
	for _, m := range e.Menu {
		k += fmt.Sprintf("\x00%d>%s>%s", m.Index, m.Title, m.ID)
	}
	return k + "\x00" + e.boots()
}

// SameBoot folds entries for display: for each entry, the index of the
// first entry that boots the same kernel, initrds and command line (its
// own index when none before it does).
func SameBoot(entries []Entry) []int {
	first := map[string]int{}
	out := make([]int, len(entries))
	for i, e := range entries {
		k := e.boots()
		if j, ok := first[k]; ok {
			out[i] = j
			continue
		}
		first[k] = i
		out[i] = i
	}
	return out
}

// Scan looks at every filesystem in fss, in order, and returns the entries
// their boot configs describe, in the order to try them: each config's
// default entry before its other entries, the filesystems in the order
// given, and the kernels of plain /boot directories (of filesystems whose
// boot configs gave no entry) last. An entry found twice (the same config
// read from two places) is kept once; entries that only boot the same are
// all kept (SameBoot folds them). problems are what stood in the way (a
// config that does not parse, an entry whose kernel is missing), each
// naming its file; they do not stop the scan.
func Scan(fss []*FS) (entries []Entry, problems []error) {
	s := &scanner{fss: fss, blsDone: map[*FS]bool{}}
	var plain []Entry
	for _, fsys := range fss {
		n := len(s.entries)
		s.grub(fsys)
		if !s.blsDone[fsys] {
			s.bls(fsys)
		}
		s.syslinux(fsys)
		if len(s.entries) == n {
			plain = append(plain, plainEntries(fsys)...)
		}
	}
	seen := map[string]bool{}
	for _, e := range append(s.entries, plain...) {
		if k := e.identity(); !seen[k] {
			seen[k] = true
			entries = append(entries, e)
		}
	}
	return entries, s.problems
}

// scanner carries one Scan.
type scanner struct {
	fss      []*FS
	entries  []Entry
	problems []error
	blsDone  map[*FS]bool // grub's blscfg read the filesystem's BLS entries
}

// add checks that an entry's files are there and keeps it, or reports it.
func (s *scanner) add(e Entry) {
	if err := e.check(); err != nil {
		s.problems = append(s.problems, fmt.Errorf("%s: entry %q: %w", e.Source, e.Name, err))
		return
	}
	s.entries = append(s.entries, e)
}

// addConfig adds one boot config's entries, its default (Default set) first
// and the rest in the config's order.
func (s *scanner) addConfig(entries []Entry) {
	for _, e := range entries {
		if e.Default {
			s.add(e)
		}
	}
	for _, e := range entries {
		if !e.Default {
			s.add(e)
		}
	}
}

// check says why an entry cannot boot: a kernel or initrd that is missing.
func (e Entry) check() error {
	for _, f := range append([]File{e.Kernel}, e.Initrds...) {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", f)
		}
	}
	return nil
}

// byUUID, byLabel and byFile find a filesystem as GRUB's search does.
func (s *scanner) byUUID(uuid string) *FS {
	for _, f := range s.fss {
		if f.UUID != "" && strings.EqualFold(f.UUID, uuid) {
			return f
		}
	}
	return nil
}

func (s *scanner) byLabel(label string) *FS {
	for _, f := range s.fss {
		if f.Label != "" && f.Label == label {
			return f
		}
	}
	return nil
}

func (s *scanner) byFile(p string) *FS {
	for _, f := range s.fss {
		if on(f, p).exists() {
			return f
		}
	}
	return nil
}

// device finds the filesystem a GRUB device name stands for: one of ours by
// its device (what search sets root to), or hdN,[gpt|msdos]M as the disk's
// index and the partition's number. nil when none matches.
func (s *scanner) device(name string) *FS {
	name = strings.Trim(name, "()")
	for _, f := range s.fss {
		if name == f.Dev {
			return f
		}
	}
	rest, ok := strings.CutPrefix(name, "hd")
	if !ok {
		return nil
	}
	diskPart, partPart, hasPart := strings.Cut(rest, ",")
	disk, err := strconv.Atoi(diskPart)
	if err != nil {
		return nil
	}
	part := 0
	if hasPart {
		partPart = strings.TrimLeft(partPart, "abcdefghijklmnopqrstuvwxyz")
		if part, err = strconv.Atoi(partPart); err != nil {
			return nil
		}
	}
	for _, f := range s.fss {
		if f.Disk == disk && f.Part == part {
			return f
		}
	}
	return nil
}

// Select picks entries by what a user typed: an index into entries, an
// entry's name or ID, or a GRUB menu path as GRUB_DEFAULT takes it: items
// separated by >, each its index in its menu (from 0), its title or its
// id, such as 1>2 or gnulinux-advanced-UUID>gnulinux-VERSION-advanced-UUID.
// A path that stops at a submenu picks its first entry, as GRUB does. It
// returns their indices; an empty sel picks them all.
func Select(entries []Entry, sel string) ([]int, error) {
	if sel == "" {
		all := make([]int, len(entries))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	if n, err := strconv.Atoi(sel); err == nil {
		if n < 0 || n >= len(entries) {
			return nil, fmt.Errorf("entry %d: there are %d entries (0 to %d)", n, len(entries), len(entries)-1)
		}
		return []int{n}, nil
	}
	var names []string
	for i, e := range entries {
		if e.Name == sel || (e.ID != "" && e.ID == sel) {
			return []int{i}, nil
		}
		names = append(names, strconv.Quote(e.Name))
	}
	if strings.Contains(sel, ">") {
		if i, ok := selectPath(entries, strings.Split(sel, ">")); ok {
			return []int{i}, nil
		}
		return nil, fmt.Errorf("no GRUB menu entry at %q; the entries are %s", sel, strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("no entry named %q; the entries are %s", sel, strings.Join(names, ", "))
}

// selectPath finds the GRUB entry a menu path names: the first in menu
// order whose path starts with the items named (several configs may
// match; the first in entries wins).
func selectPath(entries []Entry, parts []string) (int, bool) {
	best := -1
	for i, e := range entries {
		if len(e.Menu) < len(parts) || !pathMatches(e.Menu, parts) {
			continue
		}
		if best < 0 || (entries[best].Source == e.Source && menuBefore(e.Menu, entries[best].Menu)) {
			best = i
		}
	}
	return best, best >= 0
}

func pathMatches(menu []MenuItem, parts []string) bool {
	for j, p := range parts {
		m := menu[j]
		if n, err := strconv.Atoi(p); err == nil {
			if n != m.Index {
				return false
			}
			continue
		}
		if p != m.Title && (m.ID == "" || p != m.ID) {
			return false
		}
	}
	return true
}

// menuBefore says whether menu path a comes before b in their menu.
func menuBefore(a, b []MenuItem) bool {
	for j := 0; j < len(a) && j < len(b); j++ {
		if a[j].Index != b[j].Index {
			return a[j].Index < b[j].Index
		}
	}
	return len(a) < len(b)
}
