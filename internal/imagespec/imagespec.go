// Package imagespec is the contract between a container image and the
// machine that runs it, in one place for ginit, chrootrun, oci2disk and
// ocipull: where the root disk keeps the image's configuration and its
// source, the part of the OCI image configuration that is read, Docker's
// rules for merging a run's overrides into it, the shell-word splitter for
// commands given as text, and the statuses of a command that did not start.
// It is a leaf: the standard library only, so it tests anywhere.
package imagespec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ConfigPath is where a root disk carries its image's OCI configuration,
// byte for byte as the image has it.
const ConfigPath = "/.ginit/image.json"

// SourcePath is where a root pulled at boot (root=docker://, oci:) records
// what it was pulled from, so a machine booting with the same root= knows
// its install disk already holds it.
const SourcePath = "/.ginit/source.json"

// RootLabel is the filesystem label of a root disk; without root= ginit
// looks for it.
const RootLabel = "ginit-root"

// MountDir is a directory a container's root has for the machine's own
// filesystem to be mounted on.
type MountDir struct {
	Name string // in the root
	Perm uint32
}

// MountDirs and EtcFiles are what a container's root has, whatever its
// image holds, as Docker's containers have them: ginit mounts the
// machine's /dev, /proc, /sys and /run and a /tmp of its own on the
// directories, and binds the network's files over /etc's. oci2disk makes
// those an image lacks, so that the boot need not make them on the disk
// (on the first boot's critical path, new inodes cost the kernel more than
// the mounts) and a read-only root has them too.
var (
	MountDirs = []MountDir{{"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"run", 0o755}, {"tmp", 0o1777}, {"etc", 0o755}}
	EtcFiles  = []string{"resolv.conf", "hosts", "hostname"}
)

// DefaultPath is Docker's PATH for an image that sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Image is the part of an OCI image configuration that running it reads.
type Image struct {
	Architecture string `json:"architecture,omitempty"`
	OS           string `json:"os,omitempty"`
	Config       Config `json:"config"`
}

// Config is the image configuration's "config" object.
type Config struct {
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	User         string              `json:"User,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
}

// ReadImage reads the image configuration of the root at root; a root
// without one has an empty configuration.
func ReadImage(root string) (Image, error) {
	var img Image
	path := filepath.Join(root, ConfigPath)
	b, err := ReadRootFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return img, nil
	}
	if err != nil {
		return img, fmt.Errorf("read image config: %w", err)
	}
	if err := json.Unmarshal(b, &img); err != nil {
		return img, fmt.Errorf("parse image config %s: %w", ConfigPath, err)
	}
	return img, nil
}

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

// Statuses of a run that did not get as far as the command's own exit, as
// shells and `docker run` use them.
const (
	ExitRunFailed     = 125 // the machine, the boot or the namespace failed
	ExitNotExecutable = 126 // the command exists and cannot run
	ExitNotFound      = 127 // no such command
)

// StartError is a command that did not start, with the status a shell
// would give it.
type StartError struct {
	Path string // the command, when known
	Code int
	Err  error
}

func (e *StartError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *StartError) Unwrap() error { return e.Err }
