package vmrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ginit-dev/ginit/internal/rundoc"
)

// GuestOptions are the flags of a run that change the machine the workload
// sees: its name servers and hosts, its mounts, a read-only root, its stop
// signal and systemd's credentials.
type GuestOptions struct {
	DNS        []string // --dns IP
	AddHosts   []string // --add-host NAME:IP (IP may be host-gateway)
	Tmpfs      []string // --tmpfs PATH[:OPTIONS]
	ReadOnly   bool     // --read-only
	StopSignal string   // --stop-signal
	Volumes    []string // -v HOSTDIR:PATH[:ro] or NAME:PATH[:ro]
	// Credentials are systemd credentials, NAME=VALUE (--credential) or
	// NAME:PATH (--load-credential, the file's contents).
	Credentials     []string
	LoadCredentials []string
}

// hostGateway is the address the guest reaches the host at under QEMU's
// user network, which docker's --add-host NAME:host-gateway names.
const hostGateway = "10.0.2.2"

// apply puts g into doc, checking what the host can check (a host
// directory must exist); rundoc.Parse checks the rest.
func (g GuestOptions) apply(doc *rundoc.Document) error {
	vols, err := parseVolumes(g.Volumes)
	if err != nil {
		return err
	}
	if _, err := g.credentials(); err != nil {
		return err
	}
	doc.DNS, doc.ReadOnly, doc.StopSignal = g.DNS, g.ReadOnly, g.StopSignal
	for _, h := range g.AddHosts {
		if name, ip, ok := strings.Cut(h, ":"); ok && ip == "host-gateway" {
			h = name + ":" + hostGateway
		}
		doc.ExtraHosts = append(doc.ExtraHosts, h)
	}
	for _, t := range g.Tmpfs {
		path, opts, _ := strings.Cut(t, ":")
		if doc.Tmpfs == nil {
			doc.Tmpfs = map[string]string{}
		}
		if _, dup := doc.Tmpfs[path]; dup {
			return fmt.Errorf("--tmpfs %s: given twice", path)
		}
		doc.Tmpfs[path] = opts
	}
	for _, v := range vols {
		doc.Volumes = append(doc.Volumes, v.doc)
	}
	return nil
}

// volumeSpec is one -v: a host directory shared through virtiofs, or a
// named volume's disk.
type volumeSpec struct {
	hostDir string // the shared directory, absolute; "" for a named volume
	name    string // the named volume
	doc     rundoc.Volume
}

// parseVolumes reads -v as docker run does: SOURCE:TARGET[:ro|rw], where a
// SOURCE with a slash or a leading dot is a host directory, which must
// exist, and anything else names a volume. The virtiofs tags and disk
// serial numbers are numbered in the order given.
func parseVolumes(specs []string) ([]volumeSpec, error) {
	var out []volumeSpec
	for i, s := range specs {
		parts := strings.Split(s, ":")
		if len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw") {
			parts = parts[:2]
		} else if len(parts) != 2 {
			return nil, fmt.Errorf("-v %s: want SOURCE:TARGET[:ro]", s)
		}
		src, target := parts[0], parts[1]
		v := volumeSpec{doc: rundoc.Volume{Target: target, ReadOnly: strings.HasSuffix(s, ":ro")}}
		if strings.Contains(src, "/") || strings.HasPrefix(src, ".") {
			dir, err := filepath.Abs(src)
			if err != nil {
				return nil, fmt.Errorf("-v %s: %w", s, err)
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("-v %s: host directory %s does not exist", s, dir)
			}
			v.hostDir = dir
			v.doc.Type, v.doc.Source = rundoc.VirtioFS, fmt.Sprintf("ginit-fs%d", i)
		} else {
			if err := CheckVolumeName(src); err != nil {
				return nil, fmt.Errorf("-v %s: %w", s, err)
			}
			v.name = src
			v.doc.Type, v.doc.Source = rundoc.Disk, fmt.Sprintf("ginit-vol%d", i)
		}
		out = append(out, v)
	}
	return out, nil
}

// CheckVolumeName reports whether name can name a volume: the rule for
// VM names.
func CheckVolumeName(name string) error {
	if err := CheckName(name); err != nil {
		return fmt.Errorf("volume name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 characters", name)
	}
	return nil
}

// credentialFwCfg is where systemd looks for its credentials in fw_cfg.
const credentialFwCfg = "opt/io.systemd.credentials/"

// credentials reads g's credentials as NAME and contents, in order.
func (g GuestOptions) credentials() ([][2]string, error) {
	var out [][2]string
	add := func(flag, name, value string) error {
		// fw_cfg names have 55 bytes.
		if name == "" || len(credentialFwCfg+name) > 55 || strings.ContainsAny(name, "/,\x00") {
			return fmt.Errorf("%s %s: want a NAME of 1 to %d bytes without / or ,", flag, name, 55-len(credentialFwCfg))
		}
		out = append(out, [2]string{name, value})
		return nil
	}
	for _, c := range g.Credentials {
		name, value, ok := strings.Cut(c, "=")
		if !ok {
			// The argument may be the secret itself: not shown.
			return nil, errors.New("--credential: want NAME=VALUE (one has no =)")
		}
		if err := add("--credential", name, value); err != nil {
			return nil, err
		}
	}
	for _, c := range g.LoadCredentials {
		name, path, ok := strings.Cut(c, ":")
		if !ok {
			return nil, fmt.Errorf("--load-credential %s: want NAME:PATH", c)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--load-credential %s: %w", name, err)
		}
		if err := add("--load-credential", name, string(b)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GuestConfig is what inspect shows of GuestOptions: the credentials'
// names only, never their values.
type GuestConfig struct {
	DNS             []string `json:"dns,omitempty"`
	AddHosts        []string `json:"add_hosts,omitempty"`
	Tmpfs           []string `json:"tmpfs,omitempty"`
	ReadOnly        bool     `json:"read_only,omitempty"`
	StopSignal      string   `json:"stop_signal,omitempty"`
	Volumes         []string `json:"volumes,omitempty"`
	CredentialNames []string `json:"credential_names,omitempty"`
}

func (g GuestOptions) config() GuestConfig {
	c := GuestConfig{DNS: g.DNS, AddHosts: g.AddHosts, Tmpfs: g.Tmpfs, ReadOnly: g.ReadOnly, StopSignal: g.StopSignal, Volumes: g.Volumes}
	for _, kv := range g.Credentials {
		name, _, _ := strings.Cut(kv, "=")
		c.CredentialNames = append(c.CredentialNames, name)
	}
	for _, kv := range g.LoadCredentials {
		name, _, _ := strings.Cut(kv, ":")
		c.CredentialNames = append(c.CredentialNames, name)
	}
	return c
}
