package vmrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/rundoc"
)

// The host programs a VM needs.
const (
	QEMUSystem = "qemu-system-x86_64"
	QEMUImg    = "qemu-img"
)

// Info is vm.json: what inspect shows of a VM. It holds no secret: the
// environment's names only, never their values (those are in run.json).
type Info struct {
	Name     string    `json:"name"`
	Image    string    `json:"image"`     // as the run was given it
	Source   string    `json:"source"`    // what the base was made from, pinned to its digest
	ImageKey string    `json:"image_key"` // the base's key in images/
	Created  time.Time `json:"created"`
	Config   Config    `json:"config"`
	// QEMU is QEMU's argv, which runs in the VM's directory: the paths
	// without a directory are the VM's files.
	QEMU  []string `json:"qemu"`
	Ports []string `json:"ports"`
	// Disks is the root disk's chain, top first: the VM's overlay, then
	// the read-only base it reads through.
	Disks []string `json:"disks"`
	// Shares are the host directories (-v) the supervisor's virtiofsds
	// serve the VM.
	Shares []Share `json:"shares,omitempty"`
	// VsockCID is the VM's vsock guest CID, when the host has vhost-vsock
	// (0: the serial control ports alone).
	VsockCID uint32 `json:"vsock_cid,omitempty"`
}

// Config is what the run was told, as inspect shows it.
type Config struct {
	Cmd         []string  `json:"cmd,omitempty"`
	Entrypoint  *[]string `json:"entrypoint,omitempty"`
	EnvNames    []string  `json:"env_names,omitempty"` // the values stay in run.json
	Workdir     string    `json:"workdir,omitempty"`
	User        string    `json:"user,omitempty"`
	Hostname    string    `json:"hostname,omitempty"`
	StopTimeout string    `json:"stop_timeout,omitempty"`
	Remove      bool      `json:"remove"`
	Kernel      string    `json:"kernel"`
	Initrd      string    `json:"initrd"`
	Append      string    `json:"append,omitempty"`
	GuestConfig
}

// config is what inspect shows of doc and o.
func config(doc rundoc.Document, o Options) Config {
	c := Config{Workdir: doc.Workdir, User: doc.User, Hostname: doc.Hostname, Remove: o.Remove,
		Kernel: o.Kernel, Initrd: o.Initrd, Append: o.Append, Entrypoint: doc.Entrypoint}
	if doc.Cmd != nil {
		c.Cmd = *doc.Cmd
	}
	for _, kv := range doc.Env {
		name, _, _ := strings.Cut(kv, "=")
		c.EnvNames = append(c.EnvNames, name)
	}
	if o.StopTimeout > 0 {
		c.StopTimeout = o.StopTimeout.String()
	}
	c.GuestConfig = o.GuestOptions.config()
	return c
}

// machine is the QEMU machine of the VM in dir. Its files are named
// relative to dir, where QEMU runs.
func machine(o Options) qemu.VM {
	return qemu.VM{
		Kernel: o.Kernel, Initrd: o.Initrd, Disk: DiskFile, DiskFormat: "qcow2",
		// loglevel=3: the kernel's errors only, so the console is mostly
		// the workload's.
		Append:        strings.TrimSpace("loglevel=3 " + stopTimeout(o.StopTimeout) + o.Append),
		FwCfg:         map[string]string{rundoc.FwCfgName: RunDocFile},
		ConsoleSocket: ConsoleSockFile, ConsoleLog: ConsoleLogFile, QMP: QMPFile,
		// ginitctl exec and the rest talk to ginit through it.
		ControlSocket: ControlFile,
	}
}

func stopTimeout(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return "ginit.stoptimeout=" + d.String() + " "
}

// check finds what would keep o from booting, before anything is made:
// the kernel and initramfs, QEMU's programs, the name. It makes the kernel
// and initramfs paths absolute, as the supervisor runs elsewhere.
func (o *Options) check() error {
	for _, f := range []*string{&o.Kernel, &o.Initrd} {
		abs, err := filepath.Abs(*f)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return fmt.Errorf("kernel or initramfs: %w (--kernel, --initrd; make image builds them)", err)
		}
		*f = abs
	}
	for _, prog := range []string{QEMUSystem, QEMUImg} {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("%s not found on PATH: install QEMU (scripts/install-deps.sh)", prog)
		}
	}
	if o.Name != "" {
		if err := CheckName(o.Name); err != nil {
			return err
		}
		if _, err := os.Lstat(string(o.State.VM(o.Name))); err == nil {
			return fmt.Errorf("VM %q: %w (ginitctl rm %s)", o.Name, ErrNameTaken, o.Name)
		}
	}
	return nil
}

// Create makes the VM o describes, ready for its supervisor to boot: the
// base disk (converted on the image's first run, taken from the cache
// after), the VM's directory, its run document, its overlay and vm.json.
// On any failure nothing of the VM is left.
func Create(ctx context.Context, o Options) (VMDir, error) {
	doc, err := Document(o)
	if err != nil {
		return "", err
	}
	src, err := imagesrc.ParseSource(o.Image)
	if err != nil {
		return "", err
	}
	if err := o.check(); err != nil {
		return "", err
	}
	resolved, err := o.Machine.settle(ctx, o.State, o.Initrd, o.Log)
	if err != nil {
		return "", err
	}
	key, src, err := ImageKey(ctx, src)
	if err != nil {
		return "", err
	}
	// prune waits until vm.json names the base.
	unlock, err := o.State.lockImages(unix.LOCK_SH)
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(o.State.Image(key).Disk()); err != nil && o.Log != nil {
		fmt.Fprintf(o.Log, "ginitctl: converting %s into the image cache (once)\n", o.Image)
	}
	base, _, err := o.State.Base(ctx, key, src)
	if err != nil {
		return "", err
	}
	if err := o.Machine.reservePorts(ctx, &resolved, base.Disk(), o.Log); err != nil {
		return "", err
	}
	dir, err := o.State.reserve(o.Name)
	if err != nil {
		return "", err
	}
	if err := dir.populate(doc, o, base, src, resolved); err != nil {
		os.RemoveAll(string(dir))
		return "", err
	}
	return dir, nil
}

// populate writes the VM's files into its new directory.
func (dir VMDir) populate(doc rundoc.Document, o Options, base ImageDir, src imagesrc.Source, resolved settled) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	// The document may hold secrets: only the caller reads it.
	if err := os.WriteFile(dir.RunDoc(), b, 0o600); err != nil {
		return fmt.Errorf("run document: %w", err)
	}
	if err := overlay(base.Disk(), dir.Disk()); err != nil {
		return err
	}
	// QEMU appends to it; made here so a reader can open it at once.
	if err := os.WriteFile(dir.ConsoleLog(), nil, 0o600); err != nil {
		return fmt.Errorf("console log: %w", err)
	}
	m := machine(o)
	m.VsockCID = vsockCID(vsockUsable, randomUint32)
	o.Machine.apply(&m, resolved)
	shares, err := o.GuestOptions.attach(o, dir, &m)
	if err != nil {
		return err
	}
	info := Info{
		Name: dir.Name(), Image: o.Image, Source: src.String(), ImageKey: base.Key(),
		Created: time.Now().UTC(), Config: config(doc, o),
		QEMU:  append([]string{QEMUSystem}, m.Args()...),
		Ports: resolved.portList(), Disks: []string{dir.Disk(), base.Disk()}, Shares: shares,
		VsockCID: m.VsockCID,
	}
	return writeJSON(dir.Info(), info, 0o600)
}

// overlay makes a qcow2 disk at path whose backing file is the raw base:
// the VM's writes go to it, the base stays as it is.
func overlay(base, path string) error {
	out, err := exec.Command(QEMUImg, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("overlay %s over %s: %w: %s", path, base, err, strings.TrimSpace(string(out)))
	}
	// What the VM writes is its own.
	return os.Chmod(path, 0o600)
}

// ReadInfo reads the VM's vm.json.
func (dir VMDir) ReadInfo() (Info, error) {
	var info Info
	err := readJSON(dir.Info(), &info)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(string(dir)); serr != nil {
			return info, fmt.Errorf("no VM %q", dir.Name())
		}
	}
	return info, err
}
