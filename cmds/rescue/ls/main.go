// Command ls lists directories in the minimal image's rescue shell:
// `ls [-a] [-l] [PATH...]`. See package rescuecmd.
package main

import (
	"os"

	"github.com/ginit-dev/ginit/internal/rescuecmd"
)

func main() {
	os.Exit(rescuecmd.LS(os.Args[1:], os.Stdout, os.Stderr))
}
