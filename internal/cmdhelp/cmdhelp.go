// Package cmdhelp gives the project's commands one way to answer -h and
// --help: what the command is, an example, then every flag with its line, on
// standard output, exit status 0. A bad flag gives one line naming it and
// where the help is, on standard error.
package cmdhelp

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Parse parses args with fs. On -h or --help it prints head, fs's flags and
// tail to stdout and returns flag.ErrHelp; on a bad flag, an error that names
// it and points at --help. Nothing else is printed.
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer, head, tail string) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		Print(stdout, fs, head, tail)
	case err != nil:
		err = fmt.Errorf("%w (see %s --help)", err, fs.Name())
	}
	return err
}

// Print writes head, fs's flags as flag.PrintDefaults lays them out, and
// tail.
func Print(w io.Writer, fs *flag.FlagSet, head, tail string) {
	fmt.Fprint(w, head)
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
	fmt.Fprint(w, tail)
}
