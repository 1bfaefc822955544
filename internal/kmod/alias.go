package kmod

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Alias is one line of modules.alias: a device pattern and the module that
// drives devices matching it.
type Alias struct {
	Pattern string
	Module  string
}

// ParseAlias reads modules.alias ("alias PATTERN MODULE" lines).
func ParseAlias(r io.Reader) []Alias {
	var aliases []Alias
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) != 3 || f[0] != "alias" {
			continue
		}
		aliases = append(aliases, Alias{Pattern: f[1], Module: Name(f[2])})
	}
	return aliases
}

// Match returns the modules whose patterns match modalias, each once, in
// the order modules.alias lists them.
func Match(aliases []Alias, modalias string) []string {
	var mods []string
	seen := map[string]bool{}
	for _, a := range aliases {
		if !seen[a.Module] && Glob(a.Pattern, modalias) {
			seen[a.Module] = true
			mods = append(mods, a.Module)
		}
	}
	return mods
}

// Glob matches s against pattern as fnmatch(3) without flags does, which is
// what modprobe uses for aliases: '*' any run of bytes, '?' one byte,
// '[...]' a set (with ranges and '!' or '^' negation), '\' escapes.
func Glob(pattern, s string) bool {
	// Iterative matching with one backtrack point for the last '*'.
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if ok, next, valid := matchClass(pattern, p, s[i]); valid {
					if ok {
						p = next
						i++
						continue
					}
				} else if s[i] == '[' { // an unclosed '[' matches itself
					p++
					i++
					continue
				}
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == s[i] {
					p += 2
					i++
					continue
				}
			default:
				if c == s[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches c against the bracket expression at pattern[p]. It
// returns whether c is in the set, the index after the expression, and
// whether the expression is closed at all.
func matchClass(pattern string, p int, c byte) (ok bool, next int, valid bool) {
	i := p + 1
	negate := false
	if i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(pattern) && (first || pattern[i] != ']') {
		first = false
		lo := pattern[i]
		if lo == '\\' && i+1 < len(pattern) {
			i++
			lo = pattern[i]
		}
		hi := lo
		if i+2 < len(pattern) && pattern[i+1] == '-' && pattern[i+2] != ']' {
			hi = pattern[i+2]
			i += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
		i++
	}
	if i >= len(pattern) {
		return false, 0, false
	}
	return ok != negate, i + 1, true
}

// Device is a device the kernel knows, by its modalias.
type Device struct {
	Path      string // its sysfs directory
	Modalias  string
	HasDriver bool
}

// Devices lists the devices under sys (/sys) that have a modalias: those on
// the buses onBus picks (nil: all), and input devices, which are class
// devices (evdev is loaded for them), when onBus picks "input". Only the
// picked buses are read: each sysfs file costs a system call, and under
// emulation a whole-tree scan took a large part of the boot.
func Devices(sys string, onBus func(bus string) bool) []Device {
	pick := func(bus string) bool { return onBus == nil || onBus(bus) }
	var dirs []string
	buses, _ := os.ReadDir(filepath.Join(sys, "bus"))
	for _, b := range buses {
		if pick(b.Name()) {
			dirs = append(dirs, filepath.Join(sys, "bus", b.Name(), "devices"))
		}
	}
	if pick("input") {
		dirs = append(dirs, filepath.Join(sys, "class", "input"))
	}
	var devs []Device
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			dir := filepath.Join(d, e.Name())
			b, err := os.ReadFile(filepath.Join(dir, "modalias"))
			if err != nil {
				continue
			}
			alias := strings.TrimSpace(string(b))
			if alias == "" {
				continue
			}
			_, err = os.Lstat(filepath.Join(dir, "driver"))
			devs = append(devs, Device{Path: dir, Modalias: alias, HasDriver: err == nil})
		}
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Path < devs[j].Path })
	return devs
}

// ColdplugResult says what Coldplug did.
type ColdplugResult struct {
	Loaded   []string // modules inserted, sorted
	Errors   []error  // modules that failed
	Orphaned []Device // devices with no driver bound and no module to load
}

// Coldplug loads what the machine's devices ask for: it matches every
// device's modalias under sys (/sys) against aliases, loads the matching modules
// (and extra) concurrently, and repeats, since a loaded bus driver brings new
// devices (virtio_pci brings the virtio disk and NIC), until nothing new
// matches.
//
// onBus picks the buses this pass serves (nil: all), so the disk and
// network drivers can load before the rest.
func (l *Loader) Coldplug(sys string, aliases []Alias, extra []string, onBus func(bus string) bool) ColdplugResult {
	return l.coldplug(sys, aliases, extra, onBus, l.LoadAll)
}

// coldplug is Coldplug, loading each round's modules with load.
func (l *Loader) coldplug(sys string, aliases []Alias, extra []string, onBus func(bus string) bool, load func([]string) []error) ColdplugResult {
	var res ColdplugResult
	tried := map[string]bool{}
	next := []string{}
	for _, m := range extra {
		if !tried[Name(m)] {
			tried[Name(m)] = true
			next = append(next, m)
		}
	}
	var devs []Device
	current := false // devs was read after the last load
	for round := 0; round < 8; round++ {
		devs = Devices(sys, onBus)
		for _, d := range devs {
			for _, m := range Match(aliases, d.Modalias) {
				if !tried[m] && l.Has(m) {
					tried[m] = true
					next = append(next, m)
				}
			}
		}
		if len(next) == 0 {
			current = true
			break
		}
		res.Errors = append(res.Errors, load(next)...)
		next = nil
	}
	if !current {
		devs = Devices(sys, onBus)
	}
	for _, d := range devs {
		if !d.HasDriver && len(Match(aliases, d.Modalias)) == 0 && reportable(d.Modalias) {
			res.Orphaned = append(res.Orphaned, d)
		}
	}
	res.Loaded = l.Loaded()
	return res
}

// reportable limits the "no driver" report to buses where a missing driver
// means missing hardware support; CPUs, ACPI objects and platform devices
// commonly have none.
func reportable(modalias string) bool {
	// PCI bridges (base class 06) work without a driver.
	if strings.HasPrefix(modalias, "pci:") && strings.Contains(modalias, "bc06sc") {
		return false
	}
	for _, bus := range []string{"pci:", "virtio:", "usb:"} {
		if strings.HasPrefix(modalias, bus) {
			return true
		}
	}
	return false
}

// BootBus says whether a bus carries disks and
// network cards (PCI, virtio, SCSI, USB, and the platform bus, where
// firmware-described controllers such as QEMU microvm's virtio-mmio
// transports, ACPI LNRO0005, appear): the drivers the root disk and the
// network wait for. Input devices, ACPI buttons and the like can load after.
func BootBus(bus string) bool {
	switch bus {
	case "pci", "virtio", "scsi", "usb", "platform":
		return true
	}
	return false
}
