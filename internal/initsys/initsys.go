// Package initsys says which commands are an init and which signal asks each
// one to shut down: the one rule ginit and chrootrun share. An init gets PID 1
// of its own namespaces (no shim, no chroot beside ginit); its stop signal is
// what SIGTERM, Ctrl-Alt-Del or the power button become. An image's
// StopSignal, when it has one, still wins over this table.
//
// The command is judged by the file it names after symlinks, followed inside
// the root as if the root were "/" (so /sbin/init -> /lib/systemd/systemd is
// systemd, and no link leads out of the root), and by its own name where one
// binary serves many (busybox's init applet).
//
// The stop signals, from each project's documentation or source:
//
//	systemd     SIGRTMIN+3  halt.target (systemd(1); SIGRTMIN+4 is poweroff.target).
//	            SIGTERM would make it re-execute itself, not stop.
//	busybox     SIGUSR2     poweroff (init/init.c: SIGUSR1 and SIGPWR halt,
//	                        SIGTERM reboots).
//	openrc      SIGTERM     openrc-init runs the shutdown runlevel and halts
//	                        (SIGPWR does the same; SIGINT reboots).
//	runit       SIGCONT     runit(8): shuts down when /etc/runit/stopit is
//	                        executable, as runit-init 0 leaves it; else nothing.
//	s6          SIGTERM     s6-svscan(8): as s6-svscanctl -t, services down,
//	                        then .s6-svscan/finish.
//	sysvinit    SIGPWR      sysvinit has no signal that means halt or
//	                        poweroff (telinit 0 speaks over /run/initctl, and
//	                        SIGTERM is ignored). SIGPWR runs inittab's
//	                        powerwait/powerfail entries: LXC's convention,
//	                        whose templates point them at "shutdown -h now".
//	                        Without such an entry the SIGKILL after the grace
//	                        ends it. (SIGINT runs ctrlaltdel: usually a reboot.)
//	tini, dumb-init, catatonit
//	            SIGTERM     passed on to their child, as under Docker.
//	init        SIGTERM     a script or an unknown program called init (as
//	                        s6-overlay's /init), which Docker would stop so.
//
// A halt and a poweroff end the same way in a PID namespace: reboot(2) there
// kills the namespace's init with SIGINT (SIGHUP for a restart), which nsrun
// reports as its PowerOff (Reboot) and ginit turns into the machine's own.
package initsys

import (
	"io"
	"os"
	"path"
	"syscall"

	"github.com/ginit-dev/ginit/internal/nsrun"
	"github.com/ginit-dev/ginit/internal/rootpath"
	"golang.org/x/sys/unix"
)

// Init is what Detect found.
type Init struct {
	// IsInit says the command is an init: it runs as PID 1 of its own
	// namespaces and reaps its orphans itself.
	IsInit bool
	// Name is the init's kind: systemd, sysvinit, busybox, openrc, runit,
	// s6, tini, dumb-init, catatonit, or init for one not known better;
	// empty when IsInit is false.
	Name string
	// StopSignal asks it to shut down cleanly; SIGTERM for a command that
	// is not an init.
	StopSignal syscall.Signal
}

// byFile are the inits known by the name of their file.
var byFile = map[string]Init{
	"systemd":     {true, "systemd", nsrun.SignalRTMin + 3},
	"openrc-init": {true, "openrc", unix.SIGTERM},
	"runit-init":  {true, "runit", unix.SIGCONT},
	"runit":       {true, "runit", unix.SIGCONT},
	"s6-svscan":   {true, "s6", unix.SIGTERM},
	"tini":        {true, "tini", unix.SIGTERM},
	"tini-static": {true, "tini", unix.SIGTERM},
	"docker-init": {true, "tini", unix.SIGTERM}, // Docker's --init is tini
	"dumb-init":   {true, "dumb-init", unix.SIGTERM},
	"catatonit":   {true, "catatonit", unix.SIGTERM},
}

var (
	busyboxInit = Init{true, "busybox", unix.SIGUSR2}
	sysvinit    = Init{true, "sysvinit", unix.SIGPWR}
	otherInit   = Init{true, "init", unix.SIGTERM}
	notInit     = Init{StopSignal: unix.SIGTERM}
)

// Detect says whether argv0, a path inside root as the command will be
// executed there (or a bare name, taken as it is), is an init and how it is
// stopped. It never fails: a path that cannot be followed is judged by its
// own name.
func Detect(root, argv0 string) Init {
	name := path.Base(argv0)
	file, host := name, ""
	if path.IsAbs(argv0) {
		if p, err := rootpath.Resolve(root, argv0); err == nil {
			file, host = path.Base(p), p
		}
	}
	if in, ok := byFile[file]; ok {
		return in
	}
	switch {
	case file == "busybox" || file == "busybox.static":
		// One binary, many applets: the name it is called by chooses.
		if name == "init" || name == "linuxrc" {
			return busyboxInit
		}
		return notInit
	case file == "init":
		if host != "" && isELF(host) {
			return sysvinit
		}
		return otherInit
	}
	// A link whose target is none of the above, called by an init's name.
	if in, ok := byFile[name]; ok {
		return in
	}
	if name == "init" {
		return otherInit
	}
	return notInit
}

// isELF says whether the file is a program rather than a script.
func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == "\x7fELF"
}
