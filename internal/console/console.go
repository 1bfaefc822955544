// Package console finds the terminal behind /dev/console, so a workload or
// shell can have it as its controlling terminal (/dev/console itself cannot
// be one), and opens it.
package console

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Active returns the device name behind /dev/console from the kernel's list
// (the last console= given is the one /dev/console writes to), e.g. "ttyS0".
func Active(activeFile string) string {
	b, err := os.ReadFile(activeFile)
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// Open opens the real console terminal for reading and writing, falling back
// to /dev/console. ctty says whether the file can be a controlling terminal.
func Open() (f *os.File, ctty bool, err error) {
	if name := Active("/sys/class/tty/console/active"); name != "" {
		f, err := os.OpenFile("/dev/"+name, os.O_RDWR|unix.O_NOCTTY, 0)
		if err == nil {
			return f, true, nil
		}
	}
	f, err = os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, false, fmt.Errorf("open console: %w", err)
	}
	return f, false, nil
}
