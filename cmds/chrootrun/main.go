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
// When CMD is not an init (its name, or what it links to, is not init,
// systemd, openrc-init, runit-init, s6-svscan, tini, dumb-init or
// catatonit), a small shim is PID 1 in the namespace: it reaps orphans and
// passes signals on. chrootrun passes on the signals it gets; SIGTERM
// becomes the stop signal (SIGRTMIN+3 for systemd, SIGTERM otherwise),
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

	"github.com/ginit-dev/ginit/internal/nsrun"
	"github.com/ginit-dev/ginit/internal/rootpath"
	"github.com/ginit-dev/ginit/internal/workload"
	"golang.org/x/sys/unix"
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
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "exec":
			return runExec(args[1:], stderr)
		case "ps":
			return runPs(args[1:], os.Stdout, stderr)
		}
	}
	return runRoot(args, stderr)
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// initNames are the commands that are an init themselves: no shim for them.
var initNames = map[string]bool{
	"init": true, "systemd": true, "openrc-init": true, "runit-init": true,
	"s6-svscan": true, "tini": true, "dumb-init": true, "catatonit": true,
}

func runRoot(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("chrootrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		name, hostname, workdir, user = fs.String("name", "", ""), fs.String("hostname", "", ""), fs.String("workdir", "", ""), fs.String("user", "", "")
		dev, shim, stopSignal         = fs.String("dev", "minimal", ""), fs.String("shim", "auto", ""), fs.String("stop-signal", "", "")
		onReboot, stateDir            = fs.String("on-reboot", "exit", ""), fs.String("state", nsrun.RecordDir, "")
		stopTimeout                   = fs.Duration("stop-timeout", 10*time.Second, "")
		uts, ipc                      = fs.Bool("uts", false, ""), fs.Bool("ipc", false, "")
		carry, readOnly               = fs.Bool("carry-mounts", false, ""), fs.Bool("read-only", false, "")
		privileged, dropCaps, nnp     = fs.Bool("privileged", false, ""), fs.Bool("drop-caps", false, ""), fs.Bool("no-new-privs", false, "")
		verbose                       = fs.Bool("v", false, "")
		envs, binds, tmpfs, capAdd    listFlag
	)
	fs.Var(&envs, "env", "")
	fs.Var(&binds, "bind", "")
	fs.Var(&tmpfs, "tmpfs", "")
	fs.Var(&capAdd, "cap-add", "")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: chrootrun [flags] ROOT [CMD [ARGS...]] | chrootrun exec [flags] NAME CMD [ARGS...] | chrootrun ps")
	}
	if err := fs.Parse(args); err != nil {
		return exitFailed
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "chrootrun: "+format+"\n", a...)
		return exitFailed
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return exitFailed
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
		cfg.Capabilities = append(append([]string{}, nsrun.DefaultCapabilities...), capAdd...)
	} else if len(capAdd) > 0 {
		return fail("--cap-add needs --drop-caps")
	}
	if _, err := nsrun.ParseCapabilities(cfg.Capabilities); err != nil {
		return fail("%v", err)
	}
	resolved := resolveCommand(root, argv[0], cfg.Env, cfg.Dir)
	isInit := initNames[path.Base(argv[0])] || initNames[path.Base(resolved)]
	switch *shim {
	case "auto":
		cfg.Shim = !isInit
	case "always":
		cfg.Shim = true
	case "never":
	default:
		return fail("--shim=%s: want auto, always or never", *shim)
	}
	stop := unix.SIGTERM
	if path.Base(resolved) == "systemd" {
		stop = nsrun.SignalRTMin + 3
	}
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
			var se *nsrun.StartError
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
	if _, ok := workload.Getenv(env, "HOME"); !ok && home != "" {
		env = append(env, "HOME="+home)
	}
	if _, ok := workload.Getenv(env, "container"); !ok {
		env = append(env, "container=chrootrun")
	}
	if term := os.Getenv("TERM"); term != "" {
		if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
			if _, ok := workload.Getenv(env, "TERM"); !ok {
				env = append(env, "TERM="+term)
			}
		}
	}
	return workload.MergeEnv(env, envs)
}

// resolveCommand is the command's file inside root after symlinks, as a
// path inside root, or name itself when it cannot be found (the namespace
// reports that).
func resolveCommand(root, name string, env []string, dir string) string {
	if dir == "" {
		dir = "/"
	}
	p, err := workload.LookPath(root, name, env, dir)
	if err != nil {
		return name
	}
	host, err := rootpath.Resolve(root, p)
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(root, host); err == nil {
		return "/" + rel
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

func runExec(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("chrootrun exec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		workdir, user, stateDir = fs.String("workdir", "", ""), fs.String("user", "", ""), fs.String("state", nsrun.RecordDir, "")
		envs                    listFlag
	)
	fs.Var(&envs, "env", "")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: chrootrun exec [--env K=V] [--workdir DIR] [--user U] NAME CMD [ARGS...]")
	}
	if err := fs.Parse(args); err != nil {
		return exitFailed
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return exitFailed
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "chrootrun exec: %v\n", err)
		return exitFailed
	}
	rec, err := nsrun.LoadRecord(*stateDir, fs.Arg(0))
	if err != nil {
		return fail(err)
	}
	cmd := nsrun.Command{
		Argv:         fs.Args()[1:],
		Env:          workload.MergeEnv(rec.Env, envs),
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
		var se *nsrun.StartError
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

func runPs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chrootrun ps", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateDir := fs.String("state", nsrun.RecordDir, "")
	if err := fs.Parse(args); err != nil {
		return exitFailed
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
