// Package rundoc decodes the run document: the JSON a host hands ginit
// through QEMU's fw_cfg (opt/ginit/run) to say what to run, instead of the
// kernel command line, which every process in the guest and the host's ps
// can read. Its values may be secrets: nothing here prints them.
package rundoc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/ipconfig"
	"github.com/ginit-dev/ginit/internal/mounts"
	"github.com/ginit-dev/ginit/internal/nsrun"
)

// FwCfgName is the fw_cfg file a host puts the document in
// (qemu -fw_cfg name=opt/ginit/run,file=PATH).
const FwCfgName = "opt/ginit/run"

// Version is the schema version this package reads.
const Version = 1

// MaxSize bounds a document: it is read whole into PID 1's memory.
const MaxSize = 1 << 20

// Document is a run document. A field left out keeps the image's value.
type Document struct {
	Version int `json:"version"`
	// Entrypoint replaces the image's Entrypoint and drops its Cmd, as
	// docker run --entrypoint does; [] clears it.
	Entrypoint *[]string `json:"entrypoint,omitempty"`
	// Cmd replaces the image's Cmd.
	Cmd *[]string `json:"cmd,omitempty"`
	// Env entries are NAME=VALUE and override the image's by name.
	Env      []string `json:"env,omitempty"`
	Workdir  string   `json:"workdir,omitempty"`
	User     string   `json:"user,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	// DNS replaces the name servers of the leases in /etc/resolv.conf, as
	// docker run --dns does; the search domains stay the leases'.
	DNS []string `json:"dns,omitempty"`
	// ExtraHosts are NAME:IP, added to /etc/hosts as docker run --add-host.
	ExtraHosts []string `json:"extra_hosts,omitempty"`
	// Tmpfs maps an absolute path to its mount options, as docker run
	// --tmpfs PATH:OPTIONS (docker's Tmpfs in its API).
	Tmpfs map[string]string `json:"tmpfs,omitempty"`
	// ReadOnly mounts the root read-only, as docker run --read-only.
	ReadOnly bool `json:"read_only,omitempty"`
	// StopSignal replaces the image's StopSignal.
	StopSignal string   `json:"stop_signal,omitempty"`
	Volumes    []Volume `json:"volumes,omitempty"`
	// TTY is the size of the host's terminal attached to the console: a
	// serial line cannot tell the guest, so ginit sets it on the console.
	TTY *TTY `json:"tty,omitempty"`
	// OnError is what a failed boot does, as ginit.onerror=: a host whose
	// console is reachable over the network says "reboot" (or "poweroff")
	// so that nobody there gets a root shell.
	OnError string `json:"onerror,omitempty"`
}

// TTY is a terminal's size.
type TTY struct {
	Rows uint16 `json:"rows"`
	Cols uint16 `json:"cols"`
}

// Volume types.
const (
	// VirtioFS is a host directory shared through virtiofs; Source is
	// its tag.
	VirtioFS = "virtiofs"
	// Disk is a disk with a file system of its own (a named volume);
	// Source is its serial number, as the host set it.
	Disk = "disk"
)

// Volume is one mount into the root before the workload starts.
type Volume struct {
	Type     string `json:"type"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// maxSource is the longest source each volume type can have: virtio-fs
// tags have 36 bytes, virtio-blk serial numbers 20.
var maxSource = map[string]int{VirtioFS: 36, Disk: 20}

// Parse decodes and checks a document. Unknown fields, a missing or
// unknown version, and values ginit could not use are errors that name the
// field. They never quote a value that may be a secret (env, entrypoint,
// cmd, workdir, user); a bad host entry, mount option, signal or mount
// target is quoted, to say which one.
func Parse(data []byte) (Document, error) {
	if len(data) > MaxSize {
		return Document{}, fmt.Errorf("run document: %d bytes; at most %d", len(data), MaxSize)
	}
	// strings, not bytes: ginit links strings' reader already.
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("run document: %w", describe(err))
	}
	if strings.TrimSpace(string(data[dec.InputOffset():])) != "" {
		return Document{}, errors.New("run document: data after the JSON object")
	}
	if err := d.check(); err != nil {
		return Document{}, fmt.Errorf("run document: %w", err)
	}
	return d, nil
}

// describe rewords the decoder's errors so that they name the field and
// the expected type, and quote nothing of the input.
func describe(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("field %q: want %s, got a JSON %s", te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return fmt.Errorf("not JSON: syntax error at byte %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("empty or cut short")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The name of a field is the host's, not a secret.
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return err
}

func (d Document) check() error {
	if d.Version != Version {
		return fmt.Errorf("field \"version\": got %d, want %d", d.Version, Version)
	}
	if d.Entrypoint != nil {
		if err := checkWords("entrypoint", *d.Entrypoint); err != nil {
			return err
		}
	}
	if d.Cmd != nil {
		if err := checkWords("cmd", *d.Cmd); err != nil {
			return err
		}
	}
	for i, kv := range d.Env {
		name, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || name == "":
			return fmt.Errorf("field \"env\"[%d]: want NAME=VALUE", i)
		case strings.ContainsRune(kv, 0):
			return fmt.Errorf("field \"env\"[%d] (%s): contains a NUL byte", i, name)
		}
	}
	if d.Workdir != "" && !strings.HasPrefix(d.Workdir, "/") {
		return errors.New("field \"workdir\": want an absolute path")
	}
	if strings.ContainsRune(d.Workdir, 0) || strings.ContainsRune(d.User, 0) {
		return errors.New("field \"workdir\" or \"user\": contains a NUL byte")
	}
	if d.Hostname != "" {
		if err := ipconfig.CheckHostname(d.Hostname); err != nil {
			return fmt.Errorf("field \"hostname\": %w", err)
		}
	}
	for i, a := range d.DNS {
		if _, err := netip.ParseAddr(a); err != nil {
			return fmt.Errorf("field \"dns\"[%d]: want an IP address", i)
		}
	}
	for i, h := range d.ExtraHosts {
		if _, err := ParseHost(h); err != nil {
			return fmt.Errorf("field \"extra_hosts\"[%d]: %w", i, err)
		}
	}
	if d.StopSignal != "" {
		if _, err := nsrun.ParseSignal(d.StopSignal); err != nil {
			return fmt.Errorf("field \"stop_signal\": %w", err)
		}
	}
	if d.OnError != "" && !slices.Contains(bootcfg.OnErrorActions, bootcfg.Action(d.OnError)) {
		return fmt.Errorf("field \"onerror\": want one of %v", bootcfg.OnErrorActions)
	}
	targets := map[string]bool{}
	for path, opts := range d.Tmpfs {
		if err := checkTarget(path, targets); err != nil {
			return fmt.Errorf("field \"tmpfs\": %w", err)
		}
		if _, _, err := mounts.ParseTmpfsOptions(opts, 0); err != nil {
			return fmt.Errorf("field \"tmpfs\" (%s): %w", path, err)
		}
	}
	for i, v := range d.Volumes {
		max, ok := maxSource[v.Type]
		switch {
		case !ok:
			return fmt.Errorf("field \"volumes\"[%d]: type %q: want %q or %q", i, v.Type, VirtioFS, Disk)
		case v.Source == "" || len(v.Source) > max || strings.ContainsAny(v.Source, "\x00/"):
			return fmt.Errorf("field \"volumes\"[%d]: source: want 1 to %d bytes, no / or NUL", i, max)
		}
		if err := checkTarget(v.Target, targets); err != nil {
			return fmt.Errorf("field \"volumes\"[%d]: %w", i, err)
		}
	}
	return nil
}

// checkTarget checks a mount point: absolute, clean, not the root, and
// not in seen (a second mount on one path would hide the first).
func checkTarget(path string, seen map[string]bool) error {
	if !strings.HasPrefix(path, "/") || filepath.Clean(path) != path || path == "/" || strings.ContainsRune(path, 0) {
		return fmt.Errorf("target %q: want a clean absolute path below /", path)
	}
	if seen[path] {
		return fmt.Errorf("target %q: mounted twice", path)
	}
	seen[path] = true
	return nil
}

// Host is one line an extra host adds to /etc/hosts.
type Host struct {
	Name string
	IP   netip.Addr
}

// ParseHost reads docker run --add-host's NAME:IP (the IP may be IPv6,
// whose colons follow the first).
func ParseHost(s string) (Host, error) {
	name, ip, _ := strings.Cut(s, ":")
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return Host{}, fmt.Errorf("%q: want NAME:IP", s)
	}
	if name == "" || strings.ContainsAny(name, " \t\n#\x00") {
		return Host{}, fmt.Errorf("%q: want a host name before the colon", s)
	}
	return Host{name, addr}, nil
}

func checkWords(field string, words []string) error {
	for i, w := range words {
		if strings.ContainsRune(w, 0) {
			return fmt.Errorf("field %q[%d]: contains a NUL byte", field, i)
		}
	}
	return nil
}

// Override is what the document changes in the image's configuration.
func (d Document) Override() imagespec.Override {
	o := imagespec.Override{Env: d.Env, Workdir: d.Workdir, User: d.User, StopSignal: d.StopSignal}
	if d.Entrypoint != nil {
		o.Entrypoint, o.HasEntrypoint = *d.Entrypoint, true
	}
	if d.Cmd != nil {
		o.Cmd, o.HasCmd = *d.Cmd, true
	}
	return o
}
