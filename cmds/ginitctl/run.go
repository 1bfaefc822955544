package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

const runHead = `Usage: ginitctl run [flags] IMAGE [CMD [ARGS...]]

Runs a container image as a VM under QEMU, as docker run runs it as a
container, and exits with the workload's status (125: the run failed).
IMAGE is anything oci2disk takes: docker://REF, docker-archive:PATH,
oci:PATH, oci-archive:PATH, tar:PATH, dir:PATH. The image is converted once
into a cache keyed by its content (its manifest digest, or a hash of a tar
or dir); each VM boots a copy-on-write overlay over that base. Env values,
the user, the workdir, the entrypoint and the command reach the VM through
QEMU's fw_cfg, not the kernel command line.

Example:
  ginitctl run --rm -e GREETING=hi --env-file secrets.env docker://alpine env
  ginitctl run -d --name web docker://nginx && ginitctl logs -f web

Flags:
`

const runTail = `
Ctrl-C or SIGTERM stops the VM as its power button does (asked of ginit on
its control channel; QEMU's power button when the channel does not
answer): the workload gets its StopSignal, SIGKILL after --stop-timeout,
and its status comes back; a second one kills QEMU (status 125). With -d the VM goes on without
ginitctl: ps, logs, stop, kill and rm reach it by its name.

The machine is QEMU's microvm (virtio-mmio devices, no PCI, no legacy
devices: the fastest boot) wherever the run can boot on it: QEMU offers
it, the initramfs (an uncompressed one, as make image builds it) carries
virtio_mmio, and under TCG the host's TSC rate is known (bogomips in
/proc/cpuinfo), since microvm's kernel has nothing to measure it against.
Otherwise pc. --machine microvm, pc or q35 chooses; a type QEMU lacks, or a
microvm the run cannot boot on, fails the run before anything is made.

-v HOSTDIR:PATH needs root (QEMU's virtiofsd). A named volume is an ext4
disk under the state directory (volumes/NAME), kept across runs; it starts
empty (see ginitctl volume).

With -it on a terminal, the terminal is raw while the VM runs: Ctrl-C and
every other key go to the workload, the window's size follows it, and the
detach keys (ctrl-p ctrl-q) leave the VM running. -p publishes through QEMU's user network, IPv4 only;
a host port in use fails the run before anything is made.
`

func runCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("run", &state)
	var env, envFiles list
	var entry optional
	var detach bool
	o := vmrun.Options{Log: stderr}
	fs.Var(&env, "e", "set an environment variable: NAME=VALUE, or NAME for this shell's value (repeatable)")
	fs.Var(&env, "env", "same as -e")
	fs.Var(&envFiles, "env-file", "read environment variables from a file: NAME=VALUE or NAME a line, # comments (repeatable)")
	fs.Var(&entry, "entrypoint", `replace the image's Entrypoint (and drop its Cmd); "" clears it`)
	fs.StringVar(&o.Name, "name", "", "the VM's name (default: a generated adjective_noun, as docker's)")
	fs.BoolVar(&detach, "d", false, "detach: print the VM's name and return once the workload has started, as its ginit says on the control channel")
	fs.BoolVar(&detach, "detach", false, "same as -d")
	var ready bool
	fs.BoolVar(&ready, "wait-ready", false, "with -d: return once the workload is ready: a systemd workload has reached its default target (READY=1), and each TCP port of the image's ExposedPorts accepts connections inside the VM")
	fs.StringVar(&o.Workdir, "w", "", "working directory inside the VM")
	fs.StringVar(&o.Workdir, "workdir", "", "same as -w")
	fs.StringVar(&o.User, "u", "", "user[:group], names or ids from the image's /etc/passwd")
	fs.StringVar(&o.User, "user", "", "same as -u")
	fs.StringVar(&o.Hostname, "hostname", "", "the VM's hostname")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", 10*time.Second, "on a stop: how long the workload has after its StopSignal before SIGKILL")
	fs.BoolVar(&o.Remove, "rm", false, "remove the VM (its overlay, run document, logs) when it ends")
	fs.StringVar(&o.Kernel, "kernel", "build/kernel/vmlinuz", "kernel to boot")
	fs.StringVar(&o.Initrd, "initrd", "build/minimal.cpio", "ginit initramfs to boot")
	fs.StringVar(&o.Append, "append", "", "more kernel parameters (they override the run's settings)")
	guestFlags(fs, &o.GuestOptions)
	var machine machineFlags
	machine.add(fs)
	if status, done := parse(fs, args, stdout, stderr, runHead, runTail); done {
		return status
	}
	if fs.NArg() == 0 {
		return fail(stderr, errWant("run", "an IMAGE"))
	}
	o.State = state.dir
	o.Image, o.Cmd = fs.Arg(0), fs.Args()[1:]
	o.Env, o.EnvFiles, o.Entrypoint = env, envFiles, entry.v
	if err := machine.options(&o, os.Stdin); err != nil {
		return fail(stderr, err)
	}
	// Ctrl-C while the image converts leaves nothing behind.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	dir, err := vmrun.Create(ctx, o)
	cancel()
	if err != nil {
		return fail(stderr, err)
	}
	console, err := dir.OpenConsole()
	if err != nil {
		dir.Remove(true)
		return fail(stderr, err)
	}
	defer console.Close()
	// From here a Ctrl-C stops the VM, also one pressed while QEMU starts.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	vm, err := vmrun.Start(dir, supervisor(state.dir, dir))
	if err != nil {
		return fail(stderr, err)
	}
	if detach {
		vm.Detach()
		if ready {
			err = waitReady(dir, sigs)
		} else {
			err = waitStarted(dir, sigs, stderr)
		}
		if err != nil {
			return fail(stderr, fmt.Errorf("%s: %w", dir.Name(), err))
		}
		fmt.Fprintln(stdout, dir.Name())
		return 0
	}
	typed, err := machine.typeInto(dir, os.Stdin)
	if err != nil {
		dir.Remove(true)
		return fail(stderr, err)
	}
	defer typed.done()
	return foreground(vm, console, sigs, typed, stdout, stderr, o.StopTimeout+30*time.Second)
}

// supervisor is the command that supervises the VM in dir: this program
// again, as the hidden supervise command.
func supervisor(state vmrun.State, dir vmrun.VMDir) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, superviseName, "--state", string(state), dir.Name())
}

// foreground shows the VM's console until it ends and returns the
// workload's status. The first SIGINT or SIGTERM presses the power button,
// as docker run stops a container; a second one, or the VM still up after
// grace, kills QEMU.
func foreground(vm *vmrun.Supervised, console *os.File, sigs <-chan os.Signal, typed *typing, stdout, stderr io.Writer, grace time.Duration) int {
	ended := make(chan struct{})
	shown := make(chan error, 1)
	go func() { shown <- vmrun.Follow(console, stdout, ended) }()
	waited := make(chan struct{})
	var st vmrun.Status
	var err error
	go func() { st, err = vm.Wait(); close(waited) }()
	killed := false
	for presses := 0; ; {
		var kill <-chan time.Time
		if presses > 0 {
			kill = time.After(grace)
		}
		select {
		case <-sigs:
			presses++
			if presses == 1 {
				// Asked aside: a second press must not wait for it.
				go func() {
					if perr := vm.Dir.RequestStop(); perr != nil {
						fmt.Fprintf(stderr, "ginitctl: %v\n", perr)
					}
				}()
				continue
			}
		case <-kill:
		case <-waited:
			close(ended)
			<-shown
			typed.done()
			return status(st, err, killed, stderr)
		case <-typed.detach():
			vm.Detach()
			close(ended)
			<-shown
			typed.done()
			fmt.Fprintf(stderr, "\nginitctl: detached; %s runs on (ginitctl logs -f %s, ginitctl stop %s)\n", vm.Dir.Name(), vm.Dir.Name(), vm.Dir.Name())
			return 0
		}
		killed = true
		if kerr := vm.Dir.Kill(); kerr != nil {
			fmt.Fprintf(stderr, "ginitctl: %v\n", kerr)
		}
	}
}

// status is run's exit status for how the VM ended.
func status(st vmrun.Status, err error, killed bool, stderr io.Writer) int {
	switch {
	case err != nil:
		return fail(stderr, err)
	case killed:
		return fail(stderr, fmt.Errorf("interrupted: the VM was killed"))
	case st.Exit == nil:
		return fail(stderr, fmt.Errorf("the VM ended without a workload exit status (QEMU: %s; see the console)", st.QEMU))
	}
	return *st.Exit
}
