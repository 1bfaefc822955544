// Package rescuecmd holds the small ls and ip of the minimal image's
// rescue shell. u-root's own cost 30 KB and 189 KB of xz, which the
// minimal image's 1.5 MiB budget does not have; these use only what ginit
// already links (os, net, internal/rtnl) and do what a person types first
// when a boot failed: list a directory, see and set the network.
package rescuecmd

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LS lists each argument (default "."), one name a line: `ls [-a] [-l] PATH...`.
// It returns the exit status.
func LS(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("ls", flag.ContinueOnError)
	fl.SetOutput(stderr)
	all := fl.Bool("a", false, "show names that start with a dot")
	long := fl.Bool("l", false, "show mode, size, time and link targets")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	paths := fl.Args()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	status := 0
	for i, p := range paths {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := list(stdout, p, *all, *long, len(paths) > 1); err != nil {
			fmt.Fprintf(stderr, "ls: %v\n", err)
			status = 1
		}
	}
	return status
}

func list(w io.Writer, path string, all, long, header bool) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		fmt.Fprintln(w, entryLine(path, path, fi, long))
		return nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	if header {
		fmt.Fprintf(w, "%s:\n", path)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if all || !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		full := filepath.Join(path, n)
		fi, err := os.Lstat(full)
		if err != nil {
			fmt.Fprintf(w, "%s (%v)\n", n, err)
			continue
		}
		fmt.Fprintln(w, entryLine(n, full, fi, long))
	}
	return nil
}

// entryLine is name alone, or with -l its mode, size, time and, for a
// symbolic link, its target.
func entryLine(name, full string, fi fs.FileInfo, long bool) string {
	if !long {
		return name
	}
	mode := fi.Mode().String()
	if fi.Mode()&fs.ModeSymlink != 0 {
		mode = "l" + mode[1:] // as ls writes it; Go writes L
	}
	s := fmt.Sprintf("%s %10d %s %s", mode, fi.Size(), fi.ModTime().UTC().Format("2006-01-02 15:04"), name)
	if fi.Mode()&fs.ModeSymlink != 0 {
		if t, err := os.Readlink(full); err == nil {
			s += " -> " + t
		}
	}
	return s
}
