package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/ginit-dev/ginit/internal/cmdhelp"
	"github.com/ginit-dev/ginit/internal/vmrun"
)

// list is a repeatable string flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// optional is a string flag that knows whether it was given.
type optional struct{ v *string }

func (o *optional) String() string {
	if o.v == nil {
		return ""
	}
	return *o.v
}
func (o *optional) Set(v string) error { o.v = &v; return nil }

// stateFlag is --state, which every command takes.
type stateFlag struct{ dir vmrun.State }

func (s *stateFlag) String() string { return string(s.dir) }

// Set takes the directory as an absolute path: a VM's supervisor runs
// elsewhere.
func (s *stateFlag) Set(v string) error {
	abs, err := filepath.Abs(v)
	s.dir = vmrun.State(abs)
	return err
}

// newFlags is a command's flag set, with --state.
func newFlags(name string, state *stateFlag) *flag.FlagSet {
	fs := flag.NewFlagSet("ginitctl "+name, flag.ContinueOnError)
	state.dir = vmrun.DefaultState()
	fs.Var(state, "state", "state directory (default $XDG_STATE_HOME/ginit)")
	return fs
}

// parse parses args with fs and answers -h. done is true when the command
// should return status at once: after the help, or a bad flag (reported).
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, head, tail string) (status int, done bool) {
	if err := cmdhelp.Parse(fs, args, stdout, head, tail); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		fmt.Fprintf(stderr, "ginitctl: %v\n", err)
		return vmrun.ExitFailed, true
	}
	return 0, false
}

// fail reports err as one line and returns docker's status for a failed
// command.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "ginitctl: %v\n", err)
	return vmrun.ExitFailed
}

// errWant says what a command lacked.
func errWant(cmd, what string) error {
	return fmt.Errorf("%s: want %s (see ginitctl %s --help)", cmd, what, cmd)
}

// parseNames is parse for a command whose arguments are VM names, one at
// least.
func parseNames(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, head string) (names []string, status int, done bool) {
	if status, done := parse(fs, args, stdout, stderr, head, ""); done {
		return nil, status, true
	}
	if fs.NArg() == 0 {
		return nil, fail(stderr, errWant(strings.TrimPrefix(fs.Name(), "ginitctl "), "a NAME")), true
	}
	return fs.Args(), 0, false
}

// eachVM does do to each VM named, as docker's commands do to several
// containers: one line for each that failed, and status 125 if any did.
func eachVM(state vmrun.State, names []string, stderr io.Writer, do func(dir vmrun.VMDir) error) int {
	status := 0
	for _, name := range names {
		dir, err := state.Lookup(name)
		if err == nil {
			err = do(dir)
		}
		if err != nil {
			status = fail(stderr, err)
		}
	}
	return status
}
