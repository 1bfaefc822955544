// Command ip shows links, addresses and routes in the minimal image's
// rescue shell, and brings a link up by hand. See package rescuecmd.
package main

import (
	"os"

	"github.com/ginit-dev/ginit/internal/rescuecmd"
)

func main() {
	os.Exit(rescuecmd.IP(os.Args[1:], os.Stdout, os.Stderr))
}
