package kmod

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Policy is which modules a boot loads, and when: the drivers of disks and
// network cards first (the buses BootBus names, matched by modalias), with
// the modules the image lists that no device can ask for (no alias at all,
// such as filesystems) and the ones asked for by name; every other device's
// driver later, off the boot's critical path.
type Policy struct {
	loader  *Loader
	sys     string
	aliases []Alias
	always  []string // loaded whatever the hardware
}

// NewPolicy reads the module index of one kernel release under root ("/"
// at boot, a temp dir in tests): root/lib/modules/RELEASE/modules.dep and
// modules.alias, and the lists in root/etc/modules-load.d/*.conf. requested
// (ginit.modules=) is loaded unconditionally. A list that cannot be read
// is reported in warns and skipped.
func NewPolicy(root, release string, requested []string) (p *Policy, warns []error, err error) {
	dir := filepath.Join(root, "lib/modules", release)
	loader, err := NewLoader(dir)
	if err != nil {
		return nil, nil, err
	}
	p = &Policy{loader: loader, sys: filepath.Join(root, "sys")}
	if f, err := os.Open(filepath.Join(dir, "modules.alias")); err == nil {
		p.aliases = ParseAlias(f)
		f.Close()
	}
	hasAlias := map[string]bool{}
	for _, a := range p.aliases {
		hasAlias[a.Module] = true
	}
	p.always = append(p.always, requested...)
	lists, _ := filepath.Glob(filepath.Join(root, "etc/modules-load.d/*.conf"))
	for _, path := range lists {
		f, err := os.Open(path)
		if err != nil {
			warns = append(warns, fmt.Errorf("read %s: %w", path, err))
			continue
		}
		for _, m := range ReadList(f) {
			// A module with an alias loads when its device appears.
			if !hasAlias[Name(m)] {
				p.always = append(p.always, m)
			}
		}
		f.Close()
	}
	return p, warns, nil
}

// Boot loads what the boot waits for: the boot buses' drivers and the
// modules loaded whatever the hardware.
func (p *Policy) Boot() ColdplugResult {
	return p.loader.Coldplug(p.sys, p.aliases, p.always, BootBus)
}

// Rest loads the drivers of every other device (input, buttons, sensors),
// one at a time in the calling goroutine: nothing waits for them, and a
// caller that lowers its thread's priority keeps them off the workload's
// CPU.
func (p *Policy) Rest() ColdplugResult {
	return p.loader.coldplug(p.sys, p.aliases, nil, func(bus string) bool { return !BootBus(bus) }, p.loader.LoadInOrder)
}

// Loaded lists the modules loaded so far.
func (p *Policy) Loaded() []string { return p.loader.Loaded() }

// Report turns a pass's result into log lines: one per failed module, and
// one naming the devices left without a driver.
func (r ColdplugResult) Report() (warnings []string, orphans string) {
	for _, err := range r.Errors {
		warnings = append(warnings, fmt.Sprintf("module %v", err))
	}
	if len(r.Orphaned) > 0 {
		var names []string
		for _, d := range r.Orphaned {
			names = append(names, filepath.Base(d.Path)+" ("+d.Modalias+")")
		}
		orphans = fmt.Sprintf("no driver for %d devices: %s", len(names), strings.Join(names, ", "))
	}
	return warnings, orphans
}
