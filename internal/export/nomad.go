package export

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Nomad is a job for Nomad's built-in qemu task driver that boots ginit's
// kernel and initramfs with the image's disk. The three files come to the
// task's local/ directory as artifacts from BaseURL.
type Nomad struct {
	Name        string         // the job's (and group's and task's) name
	Datacenters []string       // ["*"] when empty
	Type        string         // batch (default: the job ends with its workload) or service
	BaseURL     string         // where vmlinuz, initramfs and disk.img are served
	Ports       map[string]int // port label → the port the workload listens on in the VM
	Append      string         // more kernel parameters
	MemoryMiB   int            // 256 when 0 (the driver wants at least 128)
	Accelerator string         // kvm when empty; tcg where there is no KVM
	// KillTimeout is the task's kill_timeout: how long Nomad gives the VM
	// after system_powerdown; 30s when empty, above ginit's stop timeout.
	KillTimeout string
}

// The files a Nomad job fetches, by their names in the task's local/.
const (
	NomadKernel = "vmlinuz"
	NomadInitrd = "initramfs"
	NomadDisk   = DiskFile
)

// DebugExitDevice is QEMU's isa-debug-exit device as ginit writes it
// (ginit.debugexit's default port): QEMU then exits with (status<<1)|1.
const DebugExitDevice = "isa-debug-exit,iobase=0xf4,iosize=0x04"

func (n Nomad) withDefaults() Nomad {
	if len(n.Datacenters) == 0 {
		n.Datacenters = []string{"*"}
	}
	if n.Type == "" {
		n.Type = "batch"
	}
	if n.MemoryMiB == 0 {
		n.MemoryMiB = 256
	}
	if n.Accelerator == "" {
		n.Accelerator = "kvm"
	}
	if n.KillTimeout == "" {
		n.KillTimeout = "30s"
	}
	return n
}

// KernelArgs is the command line the job gives ginit: the serial console
// (the task's stdout), a kernel panic and a failed boot that end the VM
// instead of waiting, then Append.
func (n Nomad) KernelArgs() string {
	args := []string{"console=ttyS0", "panic=-1", "ginit.onerror=poweroff"}
	if n.Append != "" {
		args = append(args, n.Append)
	}
	return strings.Join(args, " ")
}

// Args is the job's config.args: QEMU's arguments after those the driver
// puts first, relative to the task directory, where the driver runs QEMU.
func (n Nomad) Args() []string {
	return []string{
		"-kernel", "local/" + NomadKernel,
		"-initrd", "local/" + NomadInitrd,
		"-append", n.KernelArgs(),
		"-device", DebugExitDevice,
		// A reboot ends the task as a poweroff does; Nomad restarts it
		// as its restart policy says.
		"-no-reboot",
	}
}

// DriverArgs is the QEMU command line the qemu driver runs for this job
// in taskDir (its monitor socket there), with the host ports Nomad chose
// for the port labels: what drivers/qemu/driver.go's StartTask builds
// before Nomad 1.11, which opens the same socket with -qmp instead.
func (n Nomad) DriverArgs(taskDir string, hostPorts map[string]int) []string {
	n = n.withDefaults()
	args := []string{"qemu-system-x86_64",
		"-machine", "type=pc,accel=" + n.Accelerator,
		"-name", NomadDisk,
		"-m", strconv.Itoa(n.MemoryMiB) + "M",
		"-drive", "file=local/" + NomadDisk + ",if=virtio",
		"-nographic",
		"-monitor", "unix:" + filepath.Join(taskDir, "qm.sock") + ",server,nowait",
	}
	args = append(args, n.Args()...)
	var fwd []string
	for _, label := range sortedKeys(n.Ports) {
		for _, proto := range []string{"udp", "tcp"} {
			fwd = append(fwd, fmt.Sprintf("hostfwd=%s::%d-:%d", proto, hostPorts[label], n.Ports[label]))
		}
	}
	if len(fwd) > 0 {
		args = append(args, "-netdev", "user,id=user.0,"+strings.Join(fwd, ","), "-device", "virtio-net,netdev=user.0")
	}
	if n.Accelerator == "kvm" {
		args = append(args, "-enable-kvm", "-cpu", "host")
	}
	return args
}

// Job returns the job file, in HCL.
func (n Nomad) Job() ([]byte, error) {
	if err := checkName(n.Name); err != nil {
		return nil, err
	}
	if n.BaseURL == "" {
		return nil, fmt.Errorf("export: the Nomad job needs the URL its artifacts are served from")
	}
	n = n.withDefaults()
	if n.Type != "batch" && n.Type != "service" {
		return nil, fmt.Errorf("export: job type %q: want batch or service", n.Type)
	}
	for label, port := range n.Ports {
		if err := checkName(label); err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("export: port %s=%d: want LABEL=PORT, a DNS label and a port 1-65535", label, port)
		}
	}
	var b strings.Builder
	p := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	p(0, "# ginit on Nomad's qemu task driver. The workload's exit status N comes")
	p(0, "# back as the task's exit code 2N+1 (QEMU's isa-debug-exit): 1 is success.")
	p(0, "job %s {", hclString(n.Name))
	dcs := make([]string, len(n.Datacenters))
	for i, d := range n.Datacenters {
		dcs[i] = hclString(d)
	}
	p(1, "datacenters = [%s]", strings.Join(dcs, ", "))
	p(1, "type        = %s", hclString(n.Type))
	p(0, "")
	p(1, "group %s {", hclString(n.Name))
	if len(n.Ports) > 0 {
		p(2, "network {")
		for _, label := range sortedKeys(n.Ports) {
			p(3, "port %s {}", hclString(label))
		}
		p(2, "}")
		p(0, "")
	}
	p(2, "task %s {", hclString(n.Name))
	p(3, "driver       = \"qemu\"")
	p(3, "kill_timeout = %s", hclString(n.KillTimeout))
	base := strings.TrimSuffix(n.BaseURL, "/")
	for _, f := range []string{NomadKernel, NomadInitrd, NomadDisk} {
		p(0, "")
		p(3, "artifact {")
		p(4, "source      = %s", hclString(base+"/"+f))
		p(4, "destination = \"local/\"")
		p(4, "mode        = \"file\"")
		p(3, "}")
	}
	p(0, "")
	p(3, "config {")
	p(4, "image_path        = %s", hclString("local/"+NomadDisk))
	p(4, "drive_interface   = \"virtio\"")
	p(4, "accelerator       = %s", hclString(n.Accelerator))
	p(4, "graceful_shutdown = true")
	p(4, "args = [")
	for _, a := range n.Args() {
		p(5, "%s,", hclString(a))
	}
	p(4, "]")
	if len(n.Ports) > 0 {
		p(4, "port_map {")
		for _, label := range sortedKeys(n.Ports) {
			p(5, "%s = %d", label, n.Ports[label])
		}
		p(4, "}")
	}
	p(3, "}")
	p(0, "")
	p(3, "resources {")
	p(4, "memory = %d", n.MemoryMiB)
	p(3, "}")
	p(2, "}")
	p(1, "}")
	p(0, "}")
	return []byte(b.String()), nil
}

// hclString quotes s as an HCL string: quotes, backslashes and control
// characters escaped, and "${" and "%{" doubled so that Nomad does not
// interpolate them.
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	q := strings.ReplaceAll(b.String(), "${", "$${")
	return strings.ReplaceAll(q, "%{", "%%{")
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
