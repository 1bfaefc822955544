// Package kmod loads kernel modules from an image's /lib/modules/<release>
// with finit_module(2), dependencies first, reading the modules.dep that the
// image build generates.
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Name normalises a module name or path the way the kernel names modules:
// base name, no .ko suffix, dashes as underscores.
func Name(s string) string {
	s = filepath.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// Dep is one module's file and the files of the modules it needs.
type Dep struct {
	Path    string   // relative to the release directory
	Depends []string // paths, in the order modules.dep gives them
}

// ParseDep reads modules.dep ("path: dep dep ...") into a map from module
// name to its entry.
func ParseDep(r io.Reader) (map[string]Dep, error) {
	deps := map[string]Dep{}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		path, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("modules.dep line %d: no ':' in %q", n, line)
		}
		deps[Name(path)] = Dep{Path: strings.TrimSpace(path), Depends: strings.Fields(rest)}
	}
	return deps, s.Err()
}

// Loader loads modules from one release directory.
type Loader struct {
	Dir     string         // /lib/modules/<release>
	deps    map[string]Dep // nil until read
	builtin map[string]bool

	mu sync.Mutex
	// done closes when a module's load has finished; err holds how it went.
	// They let concurrent loads of shared dependencies wait for each other.
	done map[string]chan struct{}
	err  map[string]error
	// insert loads one module file; finit_module(2) unless a test sets it.
	insert func(path string) error
}

// ExtraDep is a second modules.dep, for modules a host adds in an archive
// of its own after the image (the kernel unpacks both): ginitctl's
// virtiofs and fw_cfg drivers. Its paths are relative to the same Dir.
const ExtraDep = "modules.extra.dep"

// NewLoader reads Dir/modules.dep, Dir/ExtraDep when there is one, and
// Dir/modules.builtin.
func NewLoader(dir string) (*Loader, error) {
	deps := map[string]Dep{}
	for _, name := range []string{"modules.dep", ExtraDep} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			if name == ExtraDep {
				break
			}
			return nil, fmt.Errorf("open modules.dep: %w", err)
		}
		more, err := ParseDep(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
		maps.Copy(deps, more)
	}
	l := &Loader{Dir: dir, deps: deps, builtin: map[string]bool{}, insert: finit,
		done: map[string]chan struct{}{}, err: map[string]error{}}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			l.builtin[Name(line)] = true
		}
	}
	return l, nil
}

// ErrNotFound is returned for a module that is neither in modules.dep nor
// built into the kernel.
var ErrNotFound = errors.New("module not found")

// Load loads the named module after the modules it depends on. A module that
// is built in or already loaded counts as loaded.
func (l *Loader) Load(name string) error {
	return l.load(Name(name), map[string]bool{})
}

// load walks the dependencies itself rather than trusting the order of
// modules.dep, so a list in any order loads.
func (l *Loader) load(name string, visiting map[string]bool) error {
	if l.builtin[name] {
		return nil
	}
	d, ok := l.deps[name]
	if !ok {
		return fmt.Errorf("%s: %w in %s/modules.dep", name, ErrNotFound, l.Dir)
	}
	if visiting[name] {
		return nil // a cycle; the kernel will say what is missing
	}
	visiting[name] = true
	for _, dep := range d.Depends {
		if err := l.load(Name(dep), visiting); err != nil {
			return fmt.Errorf("%s needs %w", name, err)
		}
	}
	return l.loadFile(d.Path)
}

// loadFile inserts one module file once; a second caller waits for the
// first and gets its result.
func (l *Loader) loadFile(rel string) error {
	name := Name(rel)
	l.mu.Lock()
	if ch, ok := l.done[name]; ok {
		l.mu.Unlock()
		<-ch
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.err[name]
	}
	ch := make(chan struct{})
	l.done[name] = ch
	l.mu.Unlock()

	err := l.insert(filepath.Join(l.Dir, rel))
	l.mu.Lock()
	l.err[name] = err
	l.mu.Unlock()
	close(ch)
	return err
}

// Loaded lists the modules this loader inserted without error, sorted.
func (l *Loader) Loaded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var names []string
	for name, err := range l.err {
		if err == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// LoadAll loads the named modules concurrently, each after its
// dependencies, and returns one error per module that failed.
func (l *Loader) LoadAll(names []string) []error {
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Errorf("load %s: panic: %v", name, r)
				}
			}()
			errs[i] = l.Load(name)
		}()
	}
	wg.Wait()
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// LoadInOrder loads the named modules one after the other in the calling
// goroutine, each after its dependencies, and returns one error per module
// that failed: finit_module(2) runs in the caller's thread, so the thread's
// scheduling priority applies to the work.
func (l *Loader) LoadInOrder(names []string) []error {
	var out []error
	for _, name := range names {
		if err := l.Load(name); err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Has says whether the module is in modules.dep or built in.
func (l *Loader) Has(name string) bool {
	name = Name(name)
	_, ok := l.deps[name]
	return ok || l.builtin[name]
}

func finit(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("finit_module %s: %w", path, err)
	}
	return nil
}

// ReadList reads a modules-load.d file: one module name a line, '#' and ';'
// start comments.
func ReadList(r io.Reader) []string {
	var names []string
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		names = append(names, line)
	}
	return names
}
