// Package workload decides what ginit runs in the root disk, as `docker run`
// would run the image: the image's config (/.ginit/image.json) merged with the
// kernel command line, the command resolved inside the root, and the user
// resolved from the image's own /etc/passwd and /etc/group.
package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ginit-dev/ginit/internal/bootcfg"
)

// ImageConfigPath is where the disk tool stores the image's OCI config.
const ImageConfigPath = "/.ginit/image.json"

// ImageConfig is the part of an OCI image configuration ginit uses.
type ImageConfig struct {
	Architecture string `json:"architecture,omitempty"`
	OS           string `json:"os,omitempty"`
	Config       struct {
		Entrypoint []string          `json:"Entrypoint,omitempty"`
		Cmd        []string          `json:"Cmd,omitempty"`
		Env        []string          `json:"Env,omitempty"`
		WorkingDir string            `json:"WorkingDir,omitempty"`
		User       string            `json:"User,omitempty"`
		StopSignal string            `json:"StopSignal,omitempty"`
		Labels     map[string]string `json:"Labels,omitempty"`
	} `json:"config"`
}

// ReadImageConfig reads root's image.json; a root without one has an empty
// config.
func ReadImageConfig(root string) (ImageConfig, error) {
	var c ImageConfig
	path := filepath.Join(root, ImageConfigPath)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read image config: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parse image config %s: %w", ImageConfigPath, err)
	}
	return c, nil
}

// DefaultPath is Docker's PATH for an image that sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec is the process to run, before the user is resolved.
type Spec struct {
	Argv       []string
	Env        []string // NAME=VALUE, later entries win
	WorkingDir string
	User       string
	StopSignal string
}

// ErrNoCommand is returned when neither the image nor the command line names
// a command.
var ErrNoCommand = errors.New("no command to run: the image has no Entrypoint or Cmd and no entrypoint= was given")

// Merge applies `docker run` semantics: entrypoint= replaces Entrypoint and
// drops the image's Cmd; ginit.cmd= replaces Cmd; ginit.env= entries override
// the image's Env by name.
func Merge(img ImageConfig, c bootcfg.Config) (Spec, error) {
	ic := img.Config
	entry, cmd := ic.Entrypoint, ic.Cmd
	if c.HasEntrypoint {
		entry, cmd = c.Entrypoint, nil
	}
	if c.HasCmd {
		cmd = c.Cmd
	}
	argv := append(append([]string{}, entry...), cmd...)
	if len(argv) == 0 || argv[0] == "" {
		return Spec{}, ErrNoCommand
	}
	s := Spec{
		Argv:       argv,
		WorkingDir: ic.WorkingDir,
		User:       ic.User,
		StopSignal: ic.StopSignal,
	}
	if c.Workdir != "" {
		s.WorkingDir = c.Workdir
	}
	if c.User != "" {
		s.User = c.User
	}
	s.Env = MergeEnv(ic.Env, c.Env)
	return s, nil
}

// MergeEnv returns base with over applied on top, by name, keeping base's
// order, and with PATH set when neither gives one.
func MergeEnv(base, over []string) []string {
	var out []string
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
	if _, ok := index["PATH"]; !ok {
		out = append([]string{"PATH=" + DefaultPath}, out...)
	}
	return out
}

// Getenv returns NAME's value in env.
func Getenv(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// SourcePath is where a root pulled at boot (root=docker://, oci:) records
// what it was pulled from, so a machine booting with the same root= knows
// its install disk already holds it.
const SourcePath = "/.ginit/source.json"

// Source is the content of SourcePath.
type Source struct {
	Source string `json:"source"` // as root= gave it
	Digest string `json:"digest"` // the image manifest's digest
}

// ReadSource reads what the root at root was pulled from.
func ReadSource(root string) (Source, error) {
	var s Source
	p := filepath.Join(root, SourcePath)
	b, err := os.ReadFile(p)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("parse %s: %w", p, err)
	}
	return s, nil
}
