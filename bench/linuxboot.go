package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ginit-dev/ginit/internal/imagebuild"
)

// urootConfig is the image config file, from the module's root, where
// `go run ./bench` runs.
var urootConfig = "uroot.json"

// linuxbootTable prints the size of each config that imageTable built
// against its xz budget from uroot.json: linuxboot first, whose xz image
// with its drivers must fit in a firmware volume, then any other config
// with a budget. Problems become rows, not errors: the other tables still
// run.
func linuxbootTable(w io.Writer, o options) {
	configs := []string{"linuxboot"}
	built := map[string]bool{}
	for _, c := range o.configs {
		built[c] = true
		if c != "linuxboot" {
			configs = append(configs, c)
		}
	}
	fmt.Fprintln(w, "## Image size against its xz budget (uroot.json)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| config | raw | xz | budget | of budget | left |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, c := range configs {
		s, err := imagebuild.LoadSettings(urootConfig, c)
		if err != nil {
			fmt.Fprintf(w, "| %s | %v | | | | |\n", c, err)
			continue
		}
		if s.BudgetXZBytes == 0 {
			continue
		}
		cpio := filepath.Join(o.build, c+".cpio")
		fi, err := os.Stat(cpio)
		if !built[c] || err != nil {
			fmt.Fprintf(w, "| %s | not built in this run (-configs) | | %s | | |\n", c, mib(int(s.BudgetXZBytes)))
			continue
		}
		xz, err := xzLen(cpio)
		if err != nil {
			fmt.Fprintf(w, "| %s | %s | %v | %s | | |\n", c, mib(int(fi.Size())), err, mib(int(s.BudgetXZBytes)))
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f %% | %s |\n", c, mib(int(fi.Size())), mib(xz), mib(int(s.BudgetXZBytes)),
			float64(xz)*100/float64(s.BudgetXZBytes), mib(int(s.BudgetXZBytes)-xz))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "What takes the space, per Go command, kernel module and file: `make sizes CONFIG=linuxboot`.")
	fmt.Fprintln(w)
}
