package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ginit-dev/ginit/internal/units"
)

const volumeHead = `Usage: ginitctl volume ls [flags]
       ginitctl volume rm [flags] NAME [NAME...]

Named volumes are what run -v NAME:PATH mounts: an ext4 disk each, under
the state directory (volumes/NAME/disk.img), made empty on first use and
kept across runs until volume rm. ls lists them with the space they take
on the host; rm refuses a volume a running VM has open.

Example:
  ginitctl run --rm -v pgdata:/var/lib/postgresql/data docker://postgres
  ginitctl volume ls
  ginitctl volume rm pgdata

Flags:
`

func volumeCmd(args []string, stdout, stderr io.Writer) int {
	var state stateFlag
	fs := newFlags("volume", &state)
	// The verb may come before the flags or after them.
	verb := ""
	if len(args) > 0 && (args[0] == "ls" || args[0] == "rm") {
		verb, args = args[0], args[1:]
	}
	if status, done := parse(fs, args, stdout, stderr, volumeHead, ""); done {
		return status
	}
	rest := fs.Args()
	if verb == "" && len(rest) > 0 {
		verb, rest = rest[0], rest[1:]
	}
	switch {
	case verb == "ls" && len(rest) == 0:
		vols, err := state.dir.ListVolumes()
		if err != nil {
			return fail(stderr, err)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tSIZE")
		for _, v := range vols {
			fmt.Fprintf(w, "%s\t%s\n", v.Name, units.Bytes(v.Size))
		}
		w.Flush()
		return 0
	case verb == "rm" && len(rest) > 0:
		status := 0
		for _, name := range rest {
			if err := state.dir.RemoveVolume(name); err != nil {
				status = fail(stderr, err)
				continue
			}
			fmt.Fprintln(stdout, name)
		}
		return status
	}
	return fail(stderr, errWant("volume", "ls, or rm NAME"))
}
