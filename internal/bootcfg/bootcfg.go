// Package bootcfg turns the kernel command line into ginit's typed boot
// configuration. Every parameter ginit reads is parsed here, once; a bad value
// yields a warning that names the parameter, and the default stays in force.
package bootcfg

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ginit-dev/ginit/internal/cmdline"
	"github.com/ginit-dev/ginit/internal/imagespec"
)

// Action is what ginit does when the workload ends or the boot fails.
type Action string

// The actions ginit.onexit and ginit.onerror accept.
const (
	PowerOff Action = "poweroff"
	Reboot   Action = "reboot"
	Halt     Action = "halt"
	Shell    Action = "shell"
)

// Mode is what ginit boots.
type Mode string

// The modes ginit.mode accepts.
const (
	Auto      Mode = "auto"
	Container Mode = "container"
	BootOS    Mode = "boot"
)

// DefaultRootSize is the diskless root's tmpfs size: half the memory, as
// tmpfs does by default.
const DefaultRootSize = "50%"

// IsImageRef reports whether root= names a container image to pull at boot
// (docker://REF, oci:URL) rather than a disk.
func IsImageRef(root string) bool {
	return strings.HasPrefix(root, "docker://") || strings.HasPrefix(root, "oci:")
}

// Config is everything ginit takes from /proc/cmdline.
type Config struct {
	Root       string        // root=: /dev/..., LABEL=, UUID=, PARTUUID=, PARTLABEL=
	RootFSType string        // rootfstype=; empty: probe
	RootFlags  string        // rootflags=: data for mount(2)
	ReadOnly   bool          // ro (rw clears it)
	RootWait   time.Duration // rootwait, rootdelay=, ginit.rootwait=
	RootGiven  bool          // root= was on the command line

	// Mode is what the machine boots: a container disk, or (ginit.mode=boot)
	// the operating system on the machine's disks, by kexec. The default,
	// Auto, looks for the container disk and falls back to kexec when the
	// root was not named and no container disk appears.
	Mode Mode
	// RootSize is the size of the tmpfs a diskless root (root=docker://,
	// root=oci:) is pulled into, in tmpfs's size= syntax (512m, 2g, 50%).
	RootSize string
	// Install is the disk a pulled image is written to (ginit.install=);
	// the machine then reboots into it.
	Install string

	Entrypoint    []string // entrypoint=: replaces the image's Entrypoint and Cmd
	HasEntrypoint bool
	Cmd           []string // ginit.cmd=: replaces the image's Cmd
	HasCmd        bool
	Env           []string // ginit.env=K=V, repeatable
	Workdir       string   // ginit.workdir=
	User          string   // ginit.user=

	IP      []string      // ip=, repeatable, kept raw for the network code
	NetWait time.Duration // ginit.netwait=

	Modules     []string      // ginit.modules=a,b
	OnExit      Action        // ginit.onexit=
	OnError     Action        // ginit.onerror=
	Shell       bool          // ginit.shell=1
	StopTimeout time.Duration // ginit.stoptimeout=
	Debug       bool          // ginit.debug
	Quiet       bool          // quiet

	// DebugExitPort is the I/O port of QEMU's isa-debug-exit device that
	// carries the exit status out of the VM; 0 turns it off.
	// ginit.debugexit=off|PORT, default 0xf4 (used only on QEMU).
	DebugExitPort uint16

	// RebootDelay is how long a failed boot shows its error on the
	// console before ginit.onerror=reboot reboots (ginit.rebootdelay=):
	// time to read it, and no reboot loop at full speed.
	RebootDelay time.Duration

	// OsbootEntry and OsbootAppend are osboot.entry= and osboot.append=:
	// with ginit.mode=boot, the entry to boot and what to add to its
	// command line.
	OsbootEntry  string
	OsbootAppend string

	// KeepKernelLogLevel is set by loglevel=, ignore_loglevel or debug: the
	// kernel's console level was chosen on the command line, so ginit does
	// not quiet the kernel once the workload runs.
	KeepKernelLogLevel bool

	// Unknown holds the words ginit does not read, for the debug log only:
	// nothing ginit acts on is read from it.
	Unknown []cmdline.Param
}

// Override is what the command line changes of the image's configuration:
// entrypoint=, ginit.cmd=, ginit.env=, ginit.workdir=, ginit.user=.
func (c Config) Override() imagespec.Override {
	return imagespec.Override{
		Entrypoint: c.Entrypoint, HasEntrypoint: c.HasEntrypoint,
		Cmd: c.Cmd, HasCmd: c.HasCmd,
		Env: c.Env, Workdir: c.Workdir, User: c.User,
	}
}

// OnErrorActions are what a failed boot can do (ginit.onerror=, and the
// run document's onerror).
var OnErrorActions = []Action{Shell, PowerOff, Reboot, Halt}

// Defaults returns the configuration in force with an empty command line.
func Defaults() Config {
	return Config{
		Root:          "LABEL=" + imagespec.RootLabel,
		RootWait:      10 * time.Second,
		Mode:          Auto,
		RootSize:      DefaultRootSize,
		NetWait:       3 * time.Second,
		OnExit:        PowerOff,
		OnError:       Shell,
		RebootDelay:   10 * time.Second,
		StopTimeout:   10 * time.Second,
		DebugExitPort: 0xf4,
	}
}

// Warning is a parameter ginit could not use; the boot goes on without it.
type Warning struct {
	Param cmdline.Param
	Err   error
}

func (w Warning) Error() string {
	return fmt.Sprintf("ignoring kernel parameter %q: %v", w.Param.String(), w.Err)
}

// Parse reads the kernel command line into a Config. For a key given more than
// once, the last one wins, except for the repeatable ginit.env= and ip=.
func Parse(line string) (Config, []Warning) {
	params, _ := cmdline.Split(line)
	return FromParams(params)
}

// FromParams is Parse for an already split command line.
func FromParams(params []cmdline.Param) (Config, []Warning) {
	c := Defaults()
	var warns []Warning
	warn := func(p cmdline.Param, format string, args ...any) {
		warns = append(warns, Warning{Param: p, Err: fmt.Errorf(format, args...)})
	}
	for _, p := range params {
		needValue := func() bool {
			if !p.HasValue || p.Value == "" {
				warn(p, "needs a value")
				return false
			}
			return true
		}
		// setDuration and setWords store a parsed value or warn, keeping
		// the default.
		setDuration := func(dst *time.Duration) {
			if !needValue() {
				return
			}
			if d, err := parseDuration(p.Value); err != nil {
				warn(p, "%v", err)
			} else {
				*dst = d
			}
		}
		setWords := func(dst *[]string, set *bool) {
			if !p.HasValue {
				warn(p, "needs a value")
				return
			}
			words, err := imagespec.Words(p.Value)
			if err != nil {
				warn(p, "%v", err)
				return
			}
			*dst, *set = words, true
		}
		switch p.Key {
		case "root":
			if needValue() {
				c.Root, c.RootGiven = p.Value, true
			}
		case "ginit.mode":
			switch m := Mode(p.Value); m {
			case Auto, Container, BootOS:
				c.Mode = m
			default:
				warn(p, "want auto, container or boot")
			}
		case "ginit.rootsize":
			if needValue() {
				if err := checkSize(p.Value); err != nil {
					warn(p, "%v", err)
				} else {
					c.RootSize = p.Value
				}
			}
		case "ginit.install":
			if needValue() {
				if !strings.HasPrefix(p.Value, "/dev/") {
					warn(p, "want a disk such as /dev/vda")
				} else {
					c.Install = p.Value
				}
			}
		case "rootfstype":
			if needValue() {
				c.RootFSType = p.Value
			}
		case "rootflags":
			if needValue() {
				c.RootFlags = p.Value
			}
		case "ro":
			c.ReadOnly = true
		case "rw":
			c.ReadOnly = false
		case "rootwait":
			if p.HasValue {
				if d, err := parseDuration(p.Value); err != nil {
					warn(p, "%v", err)
				} else {
					c.RootWait = d
				}
			} else {
				// The kernel's rootwait waits forever; a day is forever enough
				// and still ends in a clear error.
				c.RootWait = 24 * time.Hour
			}
		case "rootdelay":
			// rootdelay= is in seconds, as the kernel documents it.
			if needValue() {
				n, err := strconv.Atoi(p.Value)
				if err != nil || n < 0 {
					warn(p, "want whole seconds")
				} else {
					c.RootWait = time.Duration(n) * time.Second
				}
			}
		case "ginit.rootwait":
			setDuration(&c.RootWait)
		case "entrypoint":
			setWords(&c.Entrypoint, &c.HasEntrypoint)
		case "ginit.cmd":
			setWords(&c.Cmd, &c.HasCmd)
		case "ginit.env":
			if !p.HasValue || !strings.Contains(p.Value, "=") || strings.HasPrefix(p.Value, "=") {
				warn(p, "want NAME=VALUE")
				break
			}
			c.Env = append(c.Env, p.Value)
		case "ginit.workdir":
			if needValue() {
				if !strings.HasPrefix(p.Value, "/") {
					warn(p, "want an absolute path")
				} else {
					c.Workdir = p.Value
				}
			}
		case "ginit.user":
			if needValue() {
				c.User = p.Value
			}
		case "ip":
			if needValue() {
				c.IP = append(c.IP, p.Value)
			}
		case "ginit.netwait":
			setDuration(&c.NetWait)
		case "ginit.modules":
			if needValue() {
				for _, m := range strings.Split(p.Value, ",") {
					if m = strings.TrimSpace(m); m != "" {
						c.Modules = append(c.Modules, m)
					}
				}
			}
		case "ginit.onexit":
			if a, err := parseAction(p, PowerOff, Reboot, Halt, Shell); err != nil {
				warn(p, "%v", err)
			} else {
				c.OnExit = a
			}
		case "ginit.rebootdelay":
			setDuration(&c.RebootDelay)
		case "ginit.onerror":
			if a, err := parseAction(p, OnErrorActions...); err != nil {
				warn(p, "%v", err)
			} else {
				c.OnError = a
			}
		case "ginit.shell":
			if b, err := parseBool(p); err != nil {
				warn(p, "%v", err)
			} else {
				c.Shell = b
			}
		case "ginit.stoptimeout":
			setDuration(&c.StopTimeout)
		case "ginit.debug":
			if b, err := parseBool(p); err != nil {
				warn(p, "%v", err)
			} else {
				c.Debug = b
			}
		case "quiet":
			c.Quiet = true
		case "ginit.debugexit":
			if !needValue() {
				break
			}
			if p.Value == "off" || p.Value == "0" {
				c.DebugExitPort = 0
				break
			}
			n, err := strconv.ParseUint(p.Value, 0, 16)
			if err != nil {
				warn(p, "want off or an I/O port number such as 0xf4")
				break
			}
			c.DebugExitPort = uint16(n)
		case "osboot.entry":
			if needValue() {
				c.OsbootEntry = p.Value
			}
		case "osboot.append":
			if needValue() {
				c.OsbootAppend = p.Value
			}
		case "loglevel", "ignore_loglevel", "debug":
			// The kernel reads these too; ginit only notes them.
			c.KeepKernelLogLevel = true
		default:
			if strings.HasPrefix(p.Key, "ginit.") || strings.HasPrefix(p.Key, "osboot.") {
				warn(p, "unknown parameter")
				break
			}
			c.Unknown = append(c.Unknown, p)
		}
	}
	// An install writes a pulled image: with a disk as the root there is
	// nothing to write.
	if c.Install != "" && !IsImageRef(c.Root) {
		warn(cmdline.Param{Key: "ginit.install", Value: c.Install, HasValue: true}, "needs root=docker://REF or root=oci:URL; not installing")
		c.Install = ""
	}
	return c, warns
}

// parseDuration takes Go durations ("500ms", "2m") and bare numbers as seconds,
// since that is how the kernel's own delays are written.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 || n > 1e9 {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 5s or 500ms, got %q", s)
	}
	return d, nil
}

func parseBool(p cmdline.Param) (bool, error) {
	if !p.HasValue {
		return true, nil
	}
	switch strings.ToLower(p.Value) {
	case "1", "y", "yes", "on", "true":
		return true, nil
	case "0", "n", "no", "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("want 1 or 0, got %q", p.Value)
}

func parseAction(p cmdline.Param, allowed ...Action) (Action, error) {
	for _, a := range allowed {
		if p.Value == string(a) {
			return a, nil
		}
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return "", fmt.Errorf("want one of %s, got %q", strings.Join(names, "|"), p.Value)
}

// checkSize accepts tmpfs's size= syntax: a number of bytes with an optional
// k, m or g suffix, or a percentage of the memory (1-100%).
func checkSize(v string) error {
	num := strings.TrimRight(v, "kKmMgG%")
	if len(v)-len(num) > 1 {
		return fmt.Errorf("want a size such as 512m, 2g or 50%%")
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || n == 0 {
		return fmt.Errorf("want a size such as 512m, 2g or 50%%")
	}
	if strings.HasSuffix(v, "%") && n > 100 {
		return fmt.Errorf("want at most 100%%")
	}
	return nil
}
