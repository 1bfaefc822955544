package imagespec

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// Override is what a run changes of the image's configuration, as the
// flags of `docker run` do: the kernel command line, a run document.
type Override struct {
	Entrypoint    []string // replaces Entrypoint, and drops the image's Cmd
	HasEntrypoint bool
	Cmd           []string // replaces Cmd
	HasCmd        bool
	Env           []string // NAME=VALUE, override the image's by name
	Workdir       string
	User          string
	StopSignal    string // replaces StopSignal, as docker run --stop-signal
}

// Spec is the process to run, before its user is resolved.
type Spec struct {
	Argv       []string
	Env        []string // NAME=VALUE, later entries win
	WorkingDir string
	User       string
	StopSignal string
	// TCPPorts are the image's ExposedPorts over TCP, in order: the
	// workload is ready once each accepts a connection.
	TCPPorts []int
}

// ErrNoCommand is returned when neither the image nor the run names a
// command.
var ErrNoCommand = errors.New("no command to run: the image has no Entrypoint or Cmd and no entrypoint= was given")

// Merge applies the overrides to the image's configuration with Docker's
// rules: an entrypoint replaces Entrypoint and drops the image's Cmd; a cmd
// replaces Cmd; env entries override the image's by name; PATH is Docker's
// default when neither sets it.
func Merge(img Image, overrides ...Override) (Spec, error) {
	ic := img.Config
	entry, cmd := ic.Entrypoint, ic.Cmd
	s := Spec{WorkingDir: ic.WorkingDir, User: ic.User, StopSignal: ic.StopSignal, Env: ic.Env, TCPPorts: TCPPorts(ic.ExposedPorts)}
	for _, o := range overrides {
		if o.HasEntrypoint {
			entry, cmd = o.Entrypoint, nil
		}
		if o.HasCmd {
			cmd = o.Cmd
		}
		if o.Workdir != "" {
			s.WorkingDir = o.Workdir
		}
		if o.User != "" {
			s.User = o.User
		}
		if o.StopSignal != "" {
			s.StopSignal = o.StopSignal
		}
		s.Env = MergeEnv(s.Env, o.Env)
	}
	s.Argv = append(append([]string{}, entry...), cmd...)
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return Spec{}, ErrNoCommand
	}
	s.Env = WithPath(s.Env)
	return s, nil
}

// WithPath is env with Docker's default PATH in front when it sets none.
func WithPath(env []string) []string {
	if _, ok := Getenv(env, "PATH"); ok {
		return env
	}
	return append([]string{"PATH=" + DefaultPath}, env...)
}

// MergeEnv returns base with over applied on top, by name: a name already
// there keeps its place and takes the new value, new names are appended in
// order. Duplicates within base fold into their first place.
func MergeEnv(base, over []string) []string {
	out := []string{}
	index := map[string]int{}
	for _, kv := range append(append([]string{}, base...), over...) {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := index[name]; ok {
			out[i] = kv
			continue
		}
		index[name] = len(out)
		out = append(out, kv)
	}
	return out
}

// Getenv returns NAME's value in env; the last entry wins.
func Getenv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TCPPorts returns the TCP ports of an image's ExposedPorts ("80/tcp", "80",
// "8000-8002/tcp"), sorted; UDP and SCTP ports, and what does not parse,
// are left out.
func TCPPorts(exposed map[string]struct{}) []int {
	seen := map[int]bool{}
	for p := range exposed {
		num, proto, _ := strings.Cut(p, "/")
		if proto != "" && proto != "tcp" {
			continue
		}
		lo, hi, isRange := strings.Cut(num, "-")
		first, err1 := strconv.Atoi(lo)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || first < 1 || last > 65535 || last < first || last-first > 1024 {
			continue
		}
		for n := first; n <= last; n++ {
			seen[n] = true
		}
	}
	var out []int
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}
