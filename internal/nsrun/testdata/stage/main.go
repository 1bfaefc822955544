// Command stage is the smallest binary Start and Join can re-execute: it
// runs nsrun's stages and nothing else. The package's tests build it static.
package main

import (
	"fmt"
	"os"

	"github.com/ginit-dev/ginit/internal/nsrun"
)

func main() {
	if code, ok := nsrun.Stage(); ok {
		os.Exit(code)
	}
	fmt.Fprintln(os.Stderr, "stage: run by nsrun.Start and nsrun.Join only")
	os.Exit(2)
}
