// Command ginitctl runs a container image as a VM, as `docker run` runs it
// as a container: one command, no daemon. A VM is a QEMU process and a
// directory under the state directory (internal/vmrun names its files).
//
// Usage:
//
//	ginitctl COMMAND [flags] [ARGS...]
//
// Each command lives in its own file (run.go for run, ...) as a function
// that takes its arguments and returns the exit status; main only picks
// it. ginitctl exits 125 when it failed itself, as docker does.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

// command is one subcommand: its name, a line for the overview (none:
// hidden), and what runs it.
type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

// commands in the order the overview lists them.
var commands = []command{
	{"run", "run an image as a VM", runCmd},
	{"exec", "run a command in a running VM", execCmd},
	{"ps", "list VMs", psCmd},
	{"logs", "print a VM's console", logsCmd},
	{"stop", "stop VMs as their power button does", stopCmd},
	{"kill", "kill VMs' QEMU at once", killCmd},
	{"rm", "remove VMs", rmCmd},
	{"inspect", "print VMs' configuration and state as JSON", inspectCmd},
	{"volume", "list (ls) or remove (rm) named volumes", volumeCmd},
	{"prune", "remove ended VMs and unused cached images", pruneCmd},
	{"export", "write artifacts for KubeVirt, Nomad or Tinkerbell", exportCmd},
	{superviseName, "", superviseCmd},
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "ginitctl: want a command (see ginitctl --help)")
		return vmrun.ExitFailed
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, overview())
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ginitctl: unknown command %q (see ginitctl --help)\n", args[0])
	return vmrun.ExitFailed
}

func overview() string {
	var b strings.Builder
	b.WriteString(`Usage: ginitctl COMMAND [flags] [ARGS...]

Runs container images as VMs under QEMU, as docker runs them as
containers: no daemon; each VM is a QEMU process and a directory under
the state directory ($XDG_STATE_HOME/ginit, or --state).

Example:
  ginitctl run --rm docker://alpine echo hello

Commands:
`)
	for _, c := range commands {
		if c.summary != "" {
			fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
		}
	}
	b.WriteString("\nginitctl COMMAND --help tells more.\n")
	return b.String()
}
