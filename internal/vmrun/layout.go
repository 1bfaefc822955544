package vmrun

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/ginit-dev/ginit/internal/qemu"
)

// State is the root of ginitctl's state: $XDG_STATE_HOME/ginit, or
// ~/.local/state/ginit, or --state. Every path under it is named here and
// nowhere else (see the package doc for the layout).
type State string

// DefaultState is $XDG_STATE_HOME/ginit, or ~/.local/state/ginit.
func DefaultState() State {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return State(filepath.Join(d, "ginit"))
	}
	home, _ := os.UserHomeDir()
	return State(filepath.Join(home, ".local/state/ginit"))
}

// VMs is the directory holding one directory per VM, by name.
func (s State) VMs() string { return filepath.Join(string(s), "vms") }

// VM is the directory of the VM called name, which the caller has
// checked (CheckName): a name such as ../.. would lead out of vms/.
func (s State) VM(name string) VMDir { return VMDir(filepath.Join(s.VMs(), name)) }

// Lookup is the directory of the VM called name, a name as a person gave
// it: one that CheckName refuses names no VM, and never a directory
// outside vms/ (rm -f ../.. must not remove the state directory).
func (s State) Lookup(name string) (VMDir, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return s.VM(name), nil
}

// Images is the directory holding one directory per cached base disk, by
// key.
func (s State) Images() string { return filepath.Join(string(s), "images") }

// Image is the directory of the cached base disk whose key is key.
func (s State) Image(key string) ImageDir { return ImageDir(filepath.Join(s.Images(), key)) }

// Volumes is the directory holding one directory per named volume.
func (s State) Volumes() string { return filepath.Join(string(s), "volumes") }

// AccelCache holds --accel auto's answer for this boot of the host.
func (s State) AccelCache() string { return filepath.Join(string(s), "accel.json") }

// MachineCache holds the machine types of QEMU's binary.
func (s State) MachineCache() string { return filepath.Join(string(s), "machines.json") }

// VMDir is one VM's directory, mode 0700: $STATE/vms/NAME.
type VMDir string

// Name is the VM's name, its directory's.
func (d VMDir) Name() string { return filepath.Base(string(d)) }

func (d VMDir) path(name string) string { return filepath.Join(string(d), name) }

// The files in a VM's directory. QEMU runs with the directory as its
// working directory and is given the sockets by these base names, which
// keeps them under the 108 bytes a socket's path may have.
const (
	RunDocFile      = "run.json"     // the run document, 0600: may hold secrets
	InfoFile        = "vm.json"      // what inspect shows (Info): no secret values
	ConsoleLogFile  = "console.log"  // the serial console, written by QEMU
	ConsoleSockFile = "console.sock" // the serial console, for a terminal to attach
	QMPFile         = "qmp.sock"     // QEMU's QMP monitor
	ControlFile     = "control.sock" // the first control channel port (qemu.ControlSockets names the rest)
	ChannelFile     = "channel.sock" // the control channel for any number of clients, served by the supervisor
	PIDFile         = "qemu.pid"     // QEMU's process id, written by its supervisor as QEMU starts
	QEMULogFile     = "qemu.log"     // QEMU's own standard output and error
	StatusFile      = "status.json"  // how the VM ended (Status), once it has
	KilledFile      = "killed"       // kill was asked for: no workload status will come
	DiskFile        = "disk.qcow2"   // the root disk: an overlay over the image's base
)

// RunDoc is the run document the VM's ginit reads through fw_cfg.
func (d VMDir) RunDoc() string { return d.path(RunDocFile) }

// Info is vm.json.
func (d VMDir) Info() string { return d.path(InfoFile) }

// ConsoleLog is everything the serial console printed.
func (d VMDir) ConsoleLog() string { return d.path(ConsoleLogFile) }

// ConsoleSock is the serial console's socket.
func (d VMDir) ConsoleSock() string { return d.path(ConsoleSockFile) }

// QMP is QEMU's QMP socket.
func (d VMDir) QMP() string { return d.path(QMPFile) }

// Control is the control channel's socket.
func (d VMDir) Control() string { return d.path(ControlFile) }

// Channel is the socket on which the VM's supervisor serves the control
// channel to any number of clients at once, over its own port; it exists
// from the time ginit first answers there until QEMU ends.
func (d VMDir) Channel() string { return d.path(ChannelFile) }

// SupervisorControl is the socket of the control port kept for the VM's
// supervisor, which hears the workload's exited event on it.
func (d VMDir) SupervisorControl() string { return qemu.SupervisorSocket(d.Control()) }

// PID is the file the supervisor writes QEMU's process id to.
func (d VMDir) PID() string { return d.path(PIDFile) }

// QEMULog is QEMU's own output: its errors.
func (d VMDir) QEMULog() string { return d.path(QEMULogFile) }

// Status is status.json.
func (d VMDir) Status() string { return d.path(StatusFile) }

// Killed marks a VM that kill ended.
func (d VMDir) Killed() string { return d.path(KilledFile) }

// Disk is the VM's root disk, a qcow2 overlay.
func (d VMDir) Disk() string { return d.path(DiskFile) }

// ImageDir is one cached base disk's directory: $STATE/images/KEY.
type ImageDir string

// The files in an image's directory.
const (
	BaseDiskFile  = "disk.img"   // the raw ext4 base, read-only
	ImageInfoFile = "image.json" // the key, the source, the size, when last used
)

// Key is the image's key, its directory's name.
func (d ImageDir) Key() string { return filepath.Base(string(d)) }

// Disk is the raw base disk that VMs' overlays read through.
func (d ImageDir) Disk() string { return filepath.Join(string(d), BaseDiskFile) }

// Info is image.json.
func (d ImageDir) Info() string { return filepath.Join(string(d), ImageInfoFile) }

// validName is docker's rule for container names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// CheckName reports whether name can name a VM: docker's rule, at most 64
// bytes.
func CheckName(name string) error {
	if !validName.MatchString(name) || len(name) > 64 {
		return fmt.Errorf("VM name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 characters", name)
	}
	return nil
}
