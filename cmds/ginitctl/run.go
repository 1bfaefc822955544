package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ginit-dev/ginit/internal/vmrun"
)

const runHead = `Usage: ginitctl run [flags] IMAGE [CMD [ARGS...]]

Runs a container image as a VM under QEMU, as docker run runs it as a
container, and exits with the workload's status (125: the run failed).
IMAGE is anything oci2disk takes: docker://REF, docker-archive:PATH,
oci:PATH, oci-archive:PATH, tar:PATH, dir:PATH. Env values, the user, the
workdir, the entrypoint and the command reach the VM through QEMU's fw_cfg,
not the kernel command line.

Example:
  ginitctl run --rm -e GREETING=hi --env-file secrets.env docker://alpine env

Flags:
`

const runTail = `
Ctrl-C or SIGTERM stops the VM as its power button does: the workload gets
its StopSignal, SIGKILL after --stop-timeout, and its status comes back; a
second one kills QEMU (status 125).

-v HOSTDIR:PATH needs root (QEMU's virtiofsd). A named volume is an ext4
disk under the state directory (volumes/NAME), kept across runs; it starts
empty (see ginitctl volume).

Not yet: -d, -i/-t, -p, ps, stop, logs; a disk cache (each run
converts the image again).
`

func runCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("run", &state)
	var env, envFiles list
	var entry optional
	o := vmrun.Options{Console: stdout}
	fs.Var(&env, "e", "set an environment variable: NAME=VALUE, or NAME for this shell's value (repeatable)")
	fs.Var(&env, "env", "same as -e")
	fs.Var(&envFiles, "env-file", "read environment variables from a file: NAME=VALUE or NAME a line, # comments (repeatable)")
	fs.Var(&entry, "entrypoint", `replace the image's Entrypoint (and drop its Cmd); "" clears it`)
	fs.StringVar(&o.Name, "name", "", "the VM's name (default: a generated adjective_noun)")
	fs.StringVar(&o.Workdir, "w", "", "working directory inside the VM")
	fs.StringVar(&o.Workdir, "workdir", "", "same as -w")
	fs.StringVar(&o.User, "u", "", "user[:group], names or ids from the image's /etc/passwd")
	fs.StringVar(&o.User, "user", "", "same as -u")
	fs.StringVar(&o.Hostname, "hostname", "", "the VM's hostname")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", 10*time.Second, "on Ctrl-C or SIGTERM: how long the workload has after its StopSignal before SIGKILL")
	fs.BoolVar(&o.Remove, "rm", false, "remove the VM's state directory (disk, run document) when it ends")
	fs.StringVar(&o.Kernel, "kernel", "build/kernel/vmlinuz", "kernel to boot")
	fs.StringVar(&o.Initrd, "initrd", "build/minimal.cpio", "ginit initramfs to boot")
	fs.StringVar(&o.Append, "append", "", "more kernel parameters (they override the run's settings)")
	guestFlags(fs, &o.GuestOptions)
	if status, done := parse(fs, args, stdout, stderr, runHead, runTail); done {
		return status
	}
	if fs.NArg() == 0 {
		return fail(stderr, errWant("run", "an IMAGE"))
	}
	o.State = state.dir
	o.Image, o.Cmd = fs.Arg(0), fs.Args()[1:]
	o.Env, o.EnvFiles, o.Entrypoint = env, envFiles, entry.v
	// The shutdown after the grace takes a few seconds more under TCG.
	ctx, stop, release := stopOnSignals(o.StopTimeout + 30*time.Second)
	defer release()
	o.Stop = stop
	status, err := vmrun.Run(ctx, o)
	if err != nil {
		fail(stderr, err)
	}
	return status
}

// stopOnSignals turns the first SIGINT or SIGTERM into a graceful stop,
// as docker run does, and a second one, or a VM still up after grace,
// into killing QEMU.
func stopOnSignals(grace time.Duration) (ctx context.Context, stop <-chan struct{}, release func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stopc := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		close(stopc)
		select {
		case <-sigs:
		case <-time.After(grace):
		case <-ctx.Done():
			return
		}
		cancel()
	}()
	return ctx, stopc, func() { signal.Stop(sigs); cancel() }
}
