package main

import (
	"os"
	"strings"

	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/cmdline"
	"github.com/ginit-dev/ginit/internal/shutdown"
)

// A fleet's console is not a person's: a BMC's serial-over-LAN or
// `virtctl console` reaches it over the network, so an image built for
// fleets (linuxboot), or a host's run document, can make a failed boot
// reboot after a delay the console shows instead of handing it a root
// shell.

// imageCmdline holds kernel parameters an image sets for itself (the
// linuxboot image's ginit.onerror=reboot). They come before /proc/cmdline's,
// and the last value of a key wins: the kernel's command line overrides them.
var imageCmdline = "/etc/ginit/cmdline"

// withImageParams is line after the image's own parameters.
func withImageParams(line string) string {
	b, err := os.ReadFile(imageCmdline)
	if err != nil {
		return line
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\n", " ") + " " + line)
}

// applyRunDocOnError makes the run document's onerror the boot's, over
// the image's parameters and under the kernel's own command line.
func (b *boot) applyRunDocOnError() {
	if b.doc.OnError == "" {
		return
	}
	params, _ := cmdline.Split(b.kernelLine)
	for _, p := range params {
		if p.Key == "ginit.onerror" {
			return
		}
	}
	b.cfg.OnError = bootcfg.Action(b.doc.OnError)
}

// delayReboot shows a failed boot's reboot coming, and waits
// ginit.rebootdelay: time to read the error, and no reboot loop at full
// speed.
func (b *boot) delayReboot(e ending, a shutdown.Action) {
	if e.err == nil || e.then != nil || a != shutdown.Reboot || b.cfg.RebootDelay <= 0 {
		return
	}
	b.log.Errorf("rebooting in %v (ginit.rebootdelay); ginit.onerror=shell on the kernel command line gives a rescue shell instead", b.cfg.RebootDelay)
	b.m.pause(b.cfg.RebootDelay)
}
