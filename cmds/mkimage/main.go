// Command mkimage builds one of ginit's initramfs images on the build host.
//
// It has u-root compile the config's Go commands into one gbb binary (on a
// base archive of its own, so nothing of the host leaks in), adds the kernel
// modules the config names with their dependencies and a generated
// modules.dep, modules.alias and modules.softdep, checks that every
// executable in the image is a Go binary, and writes OUT/NAME.cpio plus the
// compressed forms the config asks for, failing when the xz size is over the
// config's budget.
//
// Usage, from the module's root:
//
//	go run ./cmds/mkimage -config minimal -kernel-modules build/kernel/lib/modules/$(cat build/kernel/version) -o build/
//
// Flags:
//
//	-config NAME            config in the image config file (required)
//	-uroot-config FILE      image config file (default uroot.json)
//	-kernel-modules DIR     a kernel's lib/modules/<release> directory; without it the
//	                        image carries no kernel modules
//	-o DIR                  output directory (default build)
//	-strict-modules         fail when a configured module is not in the kernel
//	-ignore-budget          write the image even when it is over its xz budget
//	-sizes                  print the table of what takes the space (it takes a
//	                        second, unstripped gbb build: about a minute more)
//	-modules a,b,c          carry these kernel modules instead of the config's
//	-budget BYTES           check against this xz budget instead of the config's
//	-v                      show u-root's output
//
// The per-config settings (compression, modules, budget) live under the
// "ginit" key of the image config file; see package imagebuild.
//
// An image over its budget is not written: mkimage fails and prints the
// table of what takes the space, per Go command in the gbb binary, per
// kernel module, and per file, so that the reader can choose what to
// leave out. Two builds of a config from the same commit, with the same Go
// toolchain, kernel modules and xz, give the same bytes; see
// scripts/check-reproducible.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"

	"github.com/ginit-dev/ginit/internal/cmdhelp"
	"github.com/ginit-dev/ginit/internal/imagebuild"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const help = `Usage: mkimage -config NAME [flags]

mkimage builds one of ginit's initramfs images on the build host: u-root
compiles the config's Go commands into one gbb binary, the kernel modules
the config names come with their dependencies, and OUT/NAME.cpio is written
with the compressed forms the config asks for, unless its xz size is over
the config's budget. Run it from the module's root.

Examples:
  go run ./cmds/mkimage -config minimal -kernel-modules build/kernel/lib/modules/$(cat build/kernel/version) -o build
  go run ./cmds/mkimage -config linuxboot -sizes -o build

Flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	var opts imagebuild.Options
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.StringVar(&opts.Config, "config", "", "config to build, from the image config file (required)")
	fs.StringVar(&opts.URootConfig, "uroot-config", "uroot.json", "image config file: u-root templates plus ginit's settings")
	fs.StringVar(&opts.KernelModules, "kernel-modules", "", "kernel module directory, .../lib/modules/<release> (empty: no modules)")
	fs.StringVar(&opts.OutDir, "o", "build", "output directory")
	fs.BoolVar(&opts.StrictModules, "strict-modules", false, "fail when a configured module is neither in the kernel nor built in")
	fs.BoolVar(&opts.IgnoreBudget, "ignore-budget", false, "write the image even when it is over its xz budget")
	fs.BoolVar(&opts.SizeTable, "sizes", false, "print the table of what takes the space")
	fs.Func("modules", "comma-separated kernel modules to carry instead of the config's (\"\": none)", func(v string) error {
		opts.Modules = []string{}
		for _, m := range strings.Split(v, ",") {
			if m = strings.TrimSpace(m); m != "" {
				opts.Modules = append(opts.Modules, m)
			}
		}
		return nil
	})
	fs.Int64Var(&opts.Budget, "budget", 0, "xz budget in bytes instead of the config's (0: the config's)")
	fs.BoolVar(&opts.Verbose, "v", false, "show u-root's output")
	switch err := cmdhelp.Parse(fs, args, stdout, help, ""); {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "mkimage: %v\n", err)
		return 2
	case opts.Config == "" || fs.NArg() > 0:
		fmt.Fprintln(stderr, "mkimage: want -config NAME and no arguments (see mkimage --help)")
		return 2
	}
	logger := log.New(stderr, "mkimage: ", 0)
	opts.Logf = logger.Printf

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := imagebuild.Build(ctx, opts)
	if err != nil {
		logger.Print(err)
		return 1
	}
	if res.Table != "" {
		fmt.Fprintln(stdout, res.Table)
	}
	fmt.Fprintln(stdout, res.Summary())
	return 0
}
