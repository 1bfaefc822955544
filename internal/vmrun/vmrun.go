// Package vmrun runs a container image as a VM, as `docker run` runs it as
// a container: it makes the root disk, writes what the run changes into a
// run document that ginit reads through fw_cfg (never the kernel command
// line: env values are often secrets), boots QEMU, and returns the
// workload's exit status. A VM is a QEMU process and a state directory.
//
// The state directory ($XDG_STATE_HOME/ginit, or --state), as layout.go
// names it:
//
//	vms/NAME/            one VM, 0700; NAME is its --name
//	  run.json           the run document (0600): env values, may be secrets
//	  vm.json            what inspect shows: image, image key, options with
//	                     env names only, QEMU's argv, ports, disk chain, created
//	  console.log        the serial console, written by QEMU
//	  console.sock       the serial console, for a terminal to attach
//	  qmp.sock           QEMU's QMP monitor
//	  control.sock       the control channel (virtio-serial)
//	  qemu.pid           QEMU's process id
//	  qemu.log           QEMU's own output (its errors)
//	  status.json        how the VM ended: the workload's status, or none
//	  killed             present once kill was asked for
//	  disk.qcow2         the root disk: an overlay over the image's base
//	images/KEY/          one cached base disk, shared by the VMs of an image
//	  disk.img           the raw ext4 base, read-only
//	  image.json         the key, the source, the size, when last used
//	volumes/NAME/        one named volume
//
// KEY is the image's manifest digest (registry, oci, oci-archive,
// docker-archive) or a sha256 of the input (tar:, dir:).
package vmrun

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ginit-dev/ginit/internal/rundoc"
)

// ExitFailed is the status when the run itself failed, as docker run
// uses 125.
const ExitFailed = 125

// Options is one run.
type Options struct {
	Image string   // anything oci2disk takes
	Cmd   []string // replaces the image's Cmd when not empty
	// Entrypoint replaces the image's Entrypoint when not nil; an empty
	// string clears it, as docker run --entrypoint "" does.
	Entrypoint *string
	Env        []string // -e: K=V, or K for the caller's value
	EnvFiles   []string // --env-file, applied before Env
	Workdir    string
	User       string
	Hostname   string
	Name       string // --name; empty: a generated one
	Remove     bool   // --rm: remove the VM's directory at the end
	State      State
	Kernel     string
	Initrd     string
	Append     string // more kernel parameters
	// StopTimeout is how long ginit gives the workload after its
	// StopSignal before SIGKILL; 0: ginit's default.
	StopTimeout time.Duration
	Log         io.Writer // what the run does that takes long; nil: nothing
	// Getenv looks up the caller's environment (os.LookupEnv when nil).
	Getenv func(string) (string, bool)
	GuestOptions
	Machine  Machine  // -m, --cpus, --accel, -p, -P
	Terminal Terminal // -t
}

// Document is the run document for o: what the run changes in the image's
// configuration.
func Document(o Options) (rundoc.Document, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	doc := rundoc.Document{Version: rundoc.Version, Workdir: o.Workdir, User: o.User, Hostname: o.Hostname}
	if len(o.Cmd) > 0 {
		doc.Cmd = &o.Cmd
	}
	if o.Entrypoint != nil {
		entry := []string{}
		if *o.Entrypoint != "" {
			entry = []string{*o.Entrypoint}
		}
		doc.Entrypoint = &entry
	}
	var env []string
	for _, f := range o.EnvFiles {
		lines, err := readEnvFile(f)
		if err != nil {
			return rundoc.Document{}, err
		}
		env = append(env, lines...)
	}
	env = append(env, o.Env...)
	doc.Env = ExpandEnv(env, getenv)
	if err := o.GuestOptions.apply(&doc); err != nil {
		return rundoc.Document{}, err
	}
	o.Terminal.document(&doc)
	// Check it as ginit will, so a bad value fails here, before a boot.
	b, err := json.Marshal(doc)
	if err != nil {
		return rundoc.Document{}, err
	}
	if _, err := rundoc.Parse(b); err != nil {
		return rundoc.Document{}, err
	}
	return doc, nil
}

// ExpandEnv is -e's rule: NAME=VALUE as it is, a bare NAME with getenv's
// value, and left out when getenv has none, as docker does.
func ExpandEnv(env []string, getenv func(string) (string, bool)) []string {
	var out []string
	for _, kv := range env {
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		} else if v, ok := getenv(kv); ok {
			out = append(out, kv+"="+v)
		}
	}
	return out
}

// readEnvFile reads docker's env file format: K=V or K a line, # comments
// and blank lines skipped, no quotes taken off.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), rundoc.MaxSize)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if name, _, _ := strings.Cut(line, "="); name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("--env-file %s:%d: want NAME=VALUE or NAME", path, n)
		}
		env = append(env, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", path, err)
	}
	return env, nil
}
