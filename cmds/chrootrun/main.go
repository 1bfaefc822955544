// Command chrootrun runs a root directory's init, or any command, inside the
// root with its own mount and PID namespaces:
//
//	chrootrun [flags] ROOT [CMD [ARGS...]]
//	chrootrun exec [flags] NAME CMD [ARGS...]
//	chrootrun ps [--state DIR]
//
// CMD defaults to /sbin/init. The root gets fresh proc, sysfs (read-only),
// cgroup2, a minimal /dev, tmpfs /run and /tmp, and is entered with
// pivot_root (MS_MOVE and chroot when the current root is the initramfs).
// runc's masked and read-only paths apply unless --privileged. The
// environment holds PATH, HOME, container=chrootrun and the --env entries,
// nothing of chrootrun's own.
//
// When CMD is not an init (package initsys says which are, following links
// inside the root: systemd, sysvinit, busybox init, openrc-init, runit,
// s6-svscan, tini, dumb-init, catatonit), a small shim is PID 1 in the
// namespace: it reaps orphans and passes signals on. chrootrun passes on
// the signals it gets; SIGTERM becomes the init's own stop signal
// (SIGRTMIN+3 for systemd, SIGUSR2 for busybox init; SIGTERM otherwise),
// followed by SIGKILL after the stop timeout. SIGINT, SIGQUIT, SIGTSTP and
// SIGWINCH reach the namespace from the terminal directly when chrootrun
// runs in its foreground, and are not passed on twice.
//
// Flags (before ROOT):
//
//	--name NAME          record the instance under --state for exec and ps
//	--hostname NAME      hostname, in a new UTS namespace
//	--uts                a new UTS namespace (implied by --hostname)
//	--ipc                a new IPC namespace
//	--env K=V            set a variable (repeatable)
//	--workdir DIR        working directory inside the root (made if missing)
//	--user U             user[:group] or uid[:gid], from the root's /etc/passwd and /etc/group
//	--bind SRC[:DST[:ro]]  bind a host path into the root (repeatable)
//	--tmpfs DST          an empty tmpfs inside the root (repeatable)
//	--dev minimal|host   a minimal /dev, or the host's
//	--carry-mounts       bind the host's own extra mounts (volumes) into the root
//	--read-only          the root read-only
//	--privileged         no masked or read-only paths
//	--drop-caps          keep only Docker's capabilities (and CAP_SYS_BOOT)
//	--cap-add CAP        keep CAP as well (repeatable, with --drop-caps)
//	--no-new-privs       set no_new_privs
//	--shim auto|always|never   who is PID 1 (auto: CMD when it is an init)
//	--stop-signal SIG    the signal SIGTERM becomes
//	--stop-timeout D     grace before SIGKILL (10s)
//	--on-reboot exit|restart   what a reboot inside does
//	--state DIR          where instances are recorded (/run/chrootrun)
//	-v                   say how the root was entered and what was skipped
//
// exec joins a named instance's namespaces and root and runs CMD there with
// the instance's environment, working directory, user and capabilities
// (--env, --workdir, --user change them). ps lists the running instances;
// both remove the records of instances that have ended. (A root directory
// named exec or ps is given as ./exec or ./ps.)
//
// Exit status: CMD's own, or 128+N when signal N killed it; 0 when the
// namespace's init powered off or halted (reboot(2) ended it with SIGINT);
// 133 when it rebooted (SIGHUP) and --on-reboot=exit; 125 when chrootrun
// itself failed; 126 and 127 when CMD could not be executed or found.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/cmdhelp"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/initsys"
	"github.com/ginit-dev/ginit/internal/nsrun"
	"github.com/ginit-dev/ginit/internal/workload"
)

// Exit statuses of chrootrun itself.
const (
	exitFailed = 125 // chrootrun could not do its part
	exitReboot = 133 // the namespace's init rebooted, as systemd-nspawn says it
)

func main() {
	if code, ok := nsrun.Stage(); ok {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "exec":
			return runExec(args[1:], stdout, stderr)
		case "ps":
			return runPs(args[1:], stdout, stderr)
		}
	}
	return runRoot(args, stdout, stderr)
}

// parseFlags parses args with fs: -h and --help print the help on stdout (status
// 0), a bad flag one line on stderr (status 125).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, head, tail string) (int, bool) {
	err := cmdhelp.Parse(fs, args, stdout, head, tail)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return exitFailed, false
	}
	return 0, true
}

const rootHelp = `Usage: chrootrun [flags] ROOT [CMD [ARGS...]]
       chrootrun exec [flags] NAME CMD [ARGS...]
       chrootrun ps [--state DIR]

chrootrun runs CMD (default /sbin/init) inside the root directory ROOT with
mount and PID namespaces of its own, like a container without an image:
fresh proc, sysfs, cgroup2, /dev, /run and /tmp, entered with pivot_root.
An init (systemd, sysvinit, busybox init, openrc-init, runit, s6-svscan,
tini, dumb-init, catatonit; links followed inside ROOT) is the namespace's
PID 1 and SIGTERM becomes its own stop signal (SIGRTMIN+3 for systemd);
any other command gets a small reaper as PID 1. It exits when CMD does:
0 when the namespace's init powered off or halted, 133 when it rebooted.
exec runs a command inside a running --name'd instance; ps lists them.

Examples:
  chrootrun /srv/debian                                 boot the root's /sbin/init
  chrootrun --name deb --hostname deb /srv/debian       ... and record it as deb
  chrootrun exec deb systemctl status                   run a command inside it
  chrootrun --bind /data:/data:ro --env MODE=test /srv/alpine /bin/sh -l
  chrootrun --drop-caps --no-new-privs --user nobody /srv/app /app/server
  chrootrun ps

Flags (before ROOT):
`

const rootTail = `
exec takes --env K=V, --workdir DIR, --user U and --state DIR (chrootrun exec
--help); ps takes --state DIR. A root directory named exec or ps is given as
./exec or ./ps.

Exit status: CMD's own, or 128+N when signal N killed it; 0 when the
namespace's init powered off or halted; 133 when it rebooted and
--on-reboot=exit; 125 when chrootrun itself failed; 126 and 127 when CMD
could not be executed or found.
`

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runRoot(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chrootrun", flag.ContinueOnError)
	var (
		name                       = fs.String("name", "", "record the instance as `NAME` under --state, for exec and ps")
		hostname                   = fs.String("hostname", "", "the namespace's host `NAME`, in a new UTS namespace")
		workdir                    = fs.String("workdir", "", "working directory `DIR` inside the root (made if missing)")
		user                       = fs.String("user", "", "run as `USER[:GROUP]` or UID[:GID], from the root's /etc/passwd and /etc/group")
		dev                        = fs.String("dev", "minimal", "`KIND` of /dev: minimal (its own) or host (the host's)")
		shim                       = fs.String("shim", "auto", "`MODE` of PID 1: auto (CMD when it is an init, else a reaper), always (a reaper) or never (CMD)")
		stopSignal                 = fs.String("stop-signal", "", "the `SIGNAL` SIGTERM becomes (default: the init's own, else SIGTERM)")
		onReboot                   = fs.String("on-reboot", "exit", "`ACTION` on a reboot inside: exit (status 133) or restart")
		stateDir                   = fs.String("state", nsrun.RecordDir, "`DIR` where named instances are recorded")
		stopTimeout                = fs.Duration("stop-timeout", 10*time.Second, "grace between the stop signal and SIGKILL")
		uts                        = fs.Bool("uts", false, "a new UTS namespace (implied by --hostname)")
		ipc                        = fs.Bool("ipc", false, "a new IPC namespace")
		carry                      = fs.Bool("carry-mounts", false, "bind the host's own extra mounts (volumes) into the root")
		readOnly                   = fs.Bool("read-only", false, "mount the root read-only")
		privileged                 = fs.Bool("privileged", false, "no masked or read-only paths (runc's lists apply otherwise)")
		dropCaps                   = fs.Bool("drop-caps", false, "keep only Docker's default capabilities (and CAP_SYS_BOOT)")
		nnp                        = fs.Bool("no-new-privs", false, "set no_new_privs: setuid binaries gain nothing")
		verbose                    = fs.Bool("v", false, "say how the root was entered and what was skipped")
		envs, binds, tmpfs, capAdd listFlag
	)
	fs.Var(&envs, "env", "set the variable `K=V` (repeatable)")
	fs.Var(&binds, "bind", "bind a host path into the root: `SRC[:DST[:ro]]` (repeatable)")
	fs.Var(&tmpfs, "tmpfs", "an empty tmpfs at `DST` inside the root (repeatable)")
	fs.Var(&capAdd, "cap-add", "with --drop-caps, keep `CAP` as well (repeatable)")
	if code, ok := parseFlags(fs, args, stdout, stderr, rootHelp, rootTail); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "chrootrun: "+format+"\n", a...)
		return exitFailed
	}
	if fs.NArg() < 1 {
		return fail("want ROOT (see chrootrun --help)")
	}
	root, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return fail("root %s: %v", fs.Arg(0), err)
	}
	argv := fs.Args()[1:]
	if len(argv) == 0 {
		argv = []string{"/sbin/init"}
	}
	if *name != "" {
		if err := nsrun.CheckName(*name); err != nil {
			return fail("%v", err)
		}
		if r, err := nsrun.LoadRecord(*stateDir, *name); err == nil {
			return fail("instance %s is running (pid %d, root %s)", *name, r.Pid, r.Root)
		}
	}
	if *onReboot != "exit" && *onReboot != "restart" {
		return fail("--on-reboot=%s: want exit or restart", *onReboot)
	}
	cred, err := workload.ResolveUser(root, *user)
	if err != nil {
		return fail("%v", err)
	}
	cfg := nsrun.Config{
		Root: root,
		Command: nsrun.Command{
			Argv:       argv,
			Env:        environment(nil, cred.Home, envs),
			Dir:        *workdir,
			UID:        cred.UID,
			GID:        cred.GID,
			Groups:     cred.Groups,
			Stdin:      os.Stdin,
			Stdout:     os.Stdout,
			Stderr:     os.Stderr,
			NoNewPrivs: *nnp,
		},
		Hostname:      *hostname,
		NewUTS:        *uts,
		NewIPC:        *ipc,
		Tmpfs:         tmpfs,
		CarryMounts:   *carry,
		ReadOnlyRoot:  *readOnly,
		Privileged:    *privileged,
		TerminalGroup: inTerminalForeground(),
	}
	switch *dev {
	case "minimal":
	case "host":
		cfg.Dev = nsrun.DevHost
	default:
		return fail("--dev=%s: want minimal or host", *dev)
	}
	for _, b := range binds {
		bind, err := parseBind(b)
		if err != nil {
			return fail("%v", err)
		}
		cfg.Binds = append(cfg.Binds, bind)
	}
	if *dropCaps {
		cfg.Capabilities = append(nsrun.DefaultCapabilities(), capAdd...)
	} else if len(capAdd) > 0 {
		return fail("--cap-add needs --drop-caps")
	}
	if _, err := nsrun.ParseCapabilities(cfg.Capabilities); err != nil {
		return fail("%v", err)
	}
	kind := initsys.Detect(root, lookCommand(root, argv[0], cfg.Env, cfg.Dir))
	switch *shim {
	case "auto":
		cfg.Shim = !kind.IsInit
	case "always":
		cfg.Shim = true
	case "never":
	default:
		return fail("--shim=%s: want auto, always or never", *shim)
	}
	stop := kind.StopSignal
	if *stopSignal != "" {
		if stop, err = nsrun.ParseSignal(*stopSignal); err != nil {
			return fail("--stop-signal: %v", err)
		}
	}

	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	for {
		p, err := nsrun.Start(cfg)
		if err != nil {
			fmt.Fprintf(stderr, "chrootrun: %v\n", err)
			var se *imagespec.StartError
			if errors.As(err, &se) {
				return se.Code
			}
			return exitFailed
		}
		if *verbose {
			fmt.Fprintf(stderr, "chrootrun: pid %d, root %s entered by %s\n", p.Pid, root, p.RootMethod)
			for _, w := range p.Warnings {
				fmt.Fprintf(stderr, "chrootrun: skipped: %s\n", w)
			}
		}
		var rec nsrun.Record
		recorded := false
		if *name != "" {
			rec, err = nsrun.NewRecord(*name, p, cfg)
			switch {
			case err == nil:
				err = rec.Save(*stateDir, true)
				recorded = err == nil
			case errors.Is(err, os.ErrNotExist):
				// The command ended before it could be recorded (a
				// process's namespaces go when it exits): there is
				// nothing to join, only its status to collect.
				err = nil
			}
			if err != nil {
				fmt.Fprintf(stderr, "chrootrun: %v\n", err)
				p.Stop(unix.SIGKILL, 0)
				p.Wait()
				return exitFailed
			}
		}
		exit, stopping := supervise(p, sigs, stop, *stopTimeout, cfg.TerminalGroup)
		if recorded {
			if err := rec.Remove(*stateDir); err != nil {
				fmt.Fprintf(stderr, "chrootrun: %v\n", err)
			}
		}
		switch exit.Reason {
		case nsrun.PowerOff:
			fmt.Fprintf(stderr, "chrootrun: %s: poweroff\n", label(*name, root))
			return 0
		case nsrun.Reboot:
			fmt.Fprintf(stderr, "chrootrun: %s: reboot\n", label(*name, root))
			if *onReboot == "restart" && !stopping {
				continue
			}
			return exitReboot
		}
		if *verbose {
			fmt.Fprintf(stderr, "chrootrun: %s: %s\n", label(*name, root), exit)
		}
		return exit.Code
	}
}

func label(name, root string) string {
	if name != "" {
		return name
	}
	return root
}

// supervise passes signals on to p until it ends; SIGTERM becomes stop and
// SIGKILL after timeout. stopping says whether a stop was asked for.
func supervise(p *nsrun.Process, sigs chan os.Signal, stop syscall.Signal, timeout time.Duration, terminalGroup bool) (exit nsrun.Exit, stopping bool) {
	for {
		select {
		case <-p.Done():
			return p.Wait(), stopping
		case s := <-sigs:
			sig, ok := s.(syscall.Signal)
			switch {
			case !ok:
			case sig == unix.SIGTERM:
				stopping = true
				p.Stop(stop, timeout)
			case nsrun.Relayed(sig, terminalGroup):
				_ = p.Signal(sig)
			}
		}
	}
}

// inTerminalForeground says whether chrootrun runs in the foreground process
// group of its controlling terminal, where the namespace's processes stay.
func inTerminalForeground() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}

// environment is the command's: base (or PATH), HOME, container=chrootrun,
// TERM when stdin is a terminal, then the --env entries by name.
func environment(base []string, home string, envs []string) []string {
	env := append([]string{}, base...)
	if _, ok := imagespec.Getenv(env, "HOME"); !ok && home != "" {
		env = append(env, "HOME="+home)
	}
	if _, ok := imagespec.Getenv(env, "container"); !ok {
		env = append(env, "container=chrootrun")
	}
	if term := os.Getenv("TERM"); term != "" {
		if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
			if _, ok := imagespec.Getenv(env, "TERM"); !ok {
				env = append(env, "TERM="+term)
			}
		}
	}
	return imagespec.WithPath(imagespec.MergeEnv(env, envs))
}

// lookCommand is the command's path inside root, found in PATH as the
// namespace will find it, or name itself when it cannot be found (the
// namespace reports that).
func lookCommand(root, name string, env []string, dir string) string {
	if dir == "" {
		dir = "/"
	}
	p, err := workload.LookPath(root, name, env, dir)
	if err != nil {
		return name
	}
	return p
}

// parseBind reads SRC[:DST[:ro|rw]].
func parseBind(s string) (nsrun.Bind, error) {
	parts := strings.Split(s, ":")
	if len(parts) > 3 || parts[0] == "" {
		return nsrun.Bind{}, fmt.Errorf("--bind %s: want SRC[:DST[:ro]]", s)
	}
	src, err := filepath.Abs(parts[0])
	if err != nil {
		return nsrun.Bind{}, fmt.Errorf("--bind %s: %w", s, err)
	}
	b := nsrun.Bind{Source: src, Target: src}
	if len(parts) > 1 && parts[1] != "" {
		b.Target = parts[1]
	}
	if !path.IsAbs(b.Target) {
		return b, fmt.Errorf("--bind %s: target %s is not absolute", s, b.Target)
	}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			b.ReadOnly = true
		case "rw":
		default:
			return b, fmt.Errorf("--bind %s: option %s: want ro or rw", s, parts[2])
		}
	}
	return b, nil
}

const execHelp = `Usage: chrootrun exec [flags] NAME CMD [ARGS...]

Runs CMD inside the running chrootrun instance NAME (started with --name):
in its namespaces and root, with its environment, working directory, user
and capabilities unless the flags change them. Exits with CMD's status.

Example:
  chrootrun exec deb systemctl poweroff

Flags:
`

func runExec(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chrootrun exec", flag.ContinueOnError)
	var (
		workdir  = fs.String("workdir", "", "working directory `DIR` instead of the instance's")
		user     = fs.String("user", "", "run as `USER[:GROUP]` or UID[:GID], from the instance's /etc/passwd")
		stateDir = fs.String("state", nsrun.RecordDir, "`DIR` where named instances are recorded")
		envs     listFlag
	)
	fs.Var(&envs, "env", "set the variable `K=V` (repeatable)")
	if code, ok := parseFlags(fs, args, stdout, stderr, execHelp, ""); !ok {
		return code
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "chrootrun exec: %v\n", err)
		return exitFailed
	}
	if fs.NArg() < 2 {
		return fail(errors.New("want NAME and CMD (see chrootrun exec --help)"))
	}
	rec, err := nsrun.LoadRecord(*stateDir, fs.Arg(0))
	if err != nil {
		return fail(err)
	}
	cmd := nsrun.Command{
		Argv:         fs.Args()[1:],
		Env:          imagespec.WithPath(imagespec.MergeEnv(rec.Env, envs)),
		Dir:          rec.Dir,
		UID:          rec.UID,
		GID:          rec.GID,
		Groups:       rec.Groups,
		Stdin:        os.Stdin,
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
		Capabilities: rec.Capabilities,
		NoNewPrivs:   rec.NoNewPrivs,
	}
	if *workdir != "" {
		cmd.Dir = *workdir
	}
	if *user != "" {
		// The instance's own passwd, as it sees it now.
		cred, err := workload.ResolveUser(fmt.Sprintf("/proc/%d/root", rec.Pid), *user)
		if err != nil {
			return fail(err)
		}
		cmd.UID, cmd.GID, cmd.Groups = cred.UID, cred.GID, cred.Groups
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	p, err := nsrun.Join(rec.Pid, cmd, nsrun.JoinOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "chrootrun exec: %v\n", err)
		var se *imagespec.StartError
		if errors.As(err, &se) {
			return se.Code
		}
		return exitFailed
	}
	terminalGroup := inTerminalForeground()
	for {
		select {
		case <-p.Done():
			return p.Wait().Code
		case s := <-sigs:
			if sig, ok := s.(syscall.Signal); ok && nsrun.Relayed(sig, terminalGroup) {
				_ = p.Signal(sig)
			}
		}
	}
}

const psHelp = `Usage: chrootrun ps [--state DIR]

Lists the running named chrootrun instances: name, pid, uptime, root and
command. Records of instances that have ended are removed.

Example:
  chrootrun ps

Flags:
`

func runPs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chrootrun ps", flag.ContinueOnError)
	stateDir := fs.String("state", nsrun.RecordDir, "`DIR` where named instances are recorded")
	if code, ok := parseFlags(fs, args, stdout, stderr, psHelp, ""); !ok {
		return code
	}
	recs, err := nsrun.ListRecords(*stateDir)
	if err != nil {
		fmt.Fprintf(stderr, "chrootrun ps: %v\n", err)
		return exitFailed
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPID\tUP\tROOT\tCOMMAND")
	for _, r := range recs {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", r.Name, r.Pid, time.Since(r.Created).Round(time.Second), r.Root, strings.Join(r.Argv, " "))
	}
	w.Flush()
	return 0
}
