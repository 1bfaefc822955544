package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/vmrun"
)

const execHead = `Usage: ginitctl exec [flags] NAME CMD [ARGS...]

Runs CMD inside the running VM NAME, in its workload's root, with the
workload's environment, working directory and user unless told otherwise,
as docker exec runs a command in a container; exits with CMD's status
(125: ginitctl failed, 126: CMD cannot run, 127: CMD not found).

Example:
  ginitctl exec -it web sh

Flags:
`

const execTail = `
Without -t, Ctrl-C, SIGTERM, SIGQUIT and SIGHUP are passed on to CMD; with
-t the terminal is in raw mode, so Ctrl-C reaches CMD through the guest's
terminal, and window size changes are passed on.

The VM's ginit serves exec on its control channel (a virtio-serial port);
a VM started from an image without it does not answer (status 125).
`

// execWait is how long exec waits for the VM's ginit to answer and its
// workload to start: a VM that was just started is still booting.
const execWait = 2 * time.Minute

func execCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("exec", &state)
	var env list
	var spec ctlproto.ExecSpec
	fs.BoolVar(&spec.Stdin, "i", false, "pass standard input to CMD")
	fs.BoolVar(&spec.TTY, "t", false, "give CMD a terminal in the guest (and put this one in raw mode)")
	fs.Var(&env, "e", "set an environment variable: NAME=VALUE, or NAME for this shell's value (repeatable)")
	fs.Var(&env, "env", "same as -e")
	fs.StringVar(&spec.Dir, "w", "", "working directory inside the workload's root")
	fs.StringVar(&spec.Dir, "workdir", "", "same as -w")
	fs.StringVar(&spec.User, "u", "", "user[:group], names or ids from the image's /etc/passwd")
	fs.StringVar(&spec.User, "user", "", "same as -u")
	if status, done := parse(fs, splitShortFlags(fs, args), stdout, stderr, execHead, execTail); done {
		return status
	}
	if fs.NArg() < 2 {
		return fail(stderr, errWant("exec", "a VM's NAME and a CMD"))
	}
	name := fs.Arg(0)
	spec.Argv = fs.Args()[1:]
	spec.Env = vmrun.ExpandEnv(env, os.LookupEnv)
	vm, err := state.dir.Lookup(name)
	if err != nil {
		return fail(stderr, err)
	}
	sock := vm.Control()
	if _, err := os.Stat(sock); err != nil {
		return fail(stderr, fmt.Errorf("exec: no VM %s with a control channel (%s): %w", name, sock, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), execWait)
	hint := time.AfterFunc(5*time.Second, func() {
		fmt.Fprintf(stderr, "ginitctl: waiting for VM %s's ginit on its control channel: booting, other execs using every port, or an image without it\n", name)
	})
	c, err := vm.DialControl(ctx, true)
	if err == nil {
		err = c.WaitRunning(ctx)
	}
	hint.Stop()
	cancel()
	if errors.Is(err, syscall.ECONNREFUSED) {
		err = fmt.Errorf("VM %s is not running", name)
	}
	if err != nil {
		return fail(stderr, fmt.Errorf("exec: %w", err))
	}
	defer c.Close()
	return runExec(c, spec, stdout, stderr)
}

// splitShortFlags spells out grouped one-letter bool flags of fs, as
// docker's -it, in the flags before the first argument: "-it" becomes
// "-i", "-t".
func splitShortFlags(fs *flag.FlagSet, args []string) []string {
	isBool := func(name string) bool {
		f := fs.Lookup(name)
		if f == nil {
			return false
		}
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		return ok && b.IsBoolFlag()
	}
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			return append(out, args[i:]...)
		}
		name := strings.TrimLeft(a, "-")
		if f := fs.Lookup(name); f != nil && !isBool(name) && !strings.Contains(name, "=") && i+1 < len(args) {
			out = append(out, a, args[i+1]) // a flag and its value
			i++
			continue
		}
		grouped := a[1] != '-' && len(name) > 1 && fs.Lookup(name) == nil
		for _, c := range name {
			grouped = grouped && fs.Lookup(string(c)) != nil && isBool(string(c))
		}
		if !grouped {
			out = append(out, a)
			continue
		}
		for _, c := range name {
			out = append(out, "-"+string(c))
		}
	}
	return out
}

// runExec runs spec on c with this process's stdio and terminal.
func runExec(c *ctlclient.Client, spec ctlproto.ExecSpec, stdout, stderr io.Writer) int {
	var stdin io.Reader
	if spec.Stdin {
		stdin = os.Stdin
	}
	tty := spec.TTY && term.IsTerminal(int(os.Stdin.Fd()))
	if tty {
		if w, h, err := term.GetSize(int(os.Stdin.Fd())); err == nil {
			spec.Size = &ctlproto.WinSize{Rows: uint16(h), Cols: uint16(w)}
		}
		old, err := term.MakeRaw(int(os.Stdin.Fd()))
		if err != nil {
			return fail(stderr, fmt.Errorf("exec: raw mode: %w", err))
		}
		defer term.Restore(int(os.Stdin.Fd()), old)
	}
	e, err := c.Exec(spec, stdin, stdout, stderr)
	if err != nil {
		return fail(stderr, fmt.Errorf("exec: %w", err))
	}
	sigs := make(chan os.Signal, 8)
	relayed := []os.Signal{syscall.SIGTERM, syscall.SIGHUP}
	if !tty {
		// A raw terminal sends these as bytes that the guest's terminal
		// turns into signals.
		relayed = append(relayed, syscall.SIGINT, syscall.SIGQUIT)
	}
	signal.Notify(sigs, append(relayed, syscall.SIGWINCH)...)
	defer signal.Stop(sigs)
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGWINCH {
				if w, h, err := term.GetSize(int(os.Stdin.Fd())); tty && err == nil {
					_ = e.Resize(uint16(h), uint16(w))
				}
				continue
			}
			_ = e.Signal(s.(syscall.Signal))
		case <-e.Done():
			code, err := e.Wait()
			if err != nil {
				if tty {
					fmt.Fprint(stderr, "\r")
				}
				fmt.Fprintf(stderr, "ginitctl: exec %s: %v\n", spec.Argv[0], err)
				var se *ctlclient.StartError
				if !errors.As(err, &se) {
					return vmrun.ExitFailed
				}
			}
			return code
		}
	}
}
