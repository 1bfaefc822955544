// Command nsguest is the guest the chrootrun tests run in a bare root: one
// static binary that reports what it sees and does what a test asks.
//
//	nsguest info                 print a JSON report of its view (see report)
//	nsguest exit N               exit with status N
//	nsguest orphans N            leave N orphans behind, wait for them to end,
//	                             then print the zombies left in the namespace
//	nsguest reboot poweroff|halt|restart   call reboot(2)
//	nsguest wait-signal          print "ready", then the first signal it gets, and exit 0
//	nsguest sleep DURATION       sleep
//	nsguest serve                sleep until SIGTERM, as a long-running init
//	nsguest reboot-once FILE     reboot(2) RESTART unless FILE exists (made first), else exit 0
//	nsguest cat FILE             print FILE
//	nsguest stubborn DURATION    print "ready" once SIGTERM is ignored, then sleep
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nsguest info|exit|orphans|reboot|wait-signal|sleep|serve")
		os.Exit(2)
	}
	arg := ""
	if len(os.Args) > 2 {
		arg = os.Args[2]
	}
	switch os.Args[1] {
	case "info":
		info()
	case "exit":
		n, _ := strconv.Atoi(arg)
		os.Exit(n)
	case "orphans":
		n, _ := strconv.Atoi(arg)
		orphans(n)
	case "orphan-parent":
		// Starts a child and leaves it behind.
		_, err := syscall.ForkExec("/proc/self/exe", []string{"nsguest", "sleep", "200ms"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "reboot":
		cmd := map[string]int{"poweroff": unix.LINUX_REBOOT_CMD_POWER_OFF, "halt": unix.LINUX_REBOOT_CMD_HALT, "restart": unix.LINUX_REBOOT_CMD_RESTART}[arg]
		unix.Sync()
		err := unix.Reboot(cmd)
		fmt.Fprintf(os.Stderr, "reboot %s: %v\n", arg, err)
		os.Exit(1)
	case "wait-signal":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, syscall.Signal(37))
		fmt.Println("ready")
		s := <-sigs
		fmt.Printf("got %d\n", s.(syscall.Signal))
	case "reboot-once":
		if _, err := os.Stat(arg); err == nil {
			return
		}
		if err := os.WriteFile(arg, nil, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
		fmt.Fprintf(os.Stderr, "reboot: %v\n", err)
		os.Exit(1)
	case "cat":
		b, err := os.ReadFile(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
	case "stubborn":
		signal.Ignore(unix.SIGTERM)
		fmt.Println("ready")
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
	case "sleep":
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
	case "serve":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, unix.SIGTERM)
		// The Go runtime catches SIGTERM from its start, so SigCgt cannot
		// tell a test that this handler is in place: this file does.
		if err := os.WriteFile("/serving", nil, 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "nsguest: %v\n", err)
			os.Exit(2)
		}
		<-sigs
	default:
		fmt.Fprintf(os.Stderr, "nsguest: unknown mode %s\n", os.Args[1])
		os.Exit(2)
	}
}

// report is what info prints.
type report struct {
	Pid, Ppid    int
	Sid          int
	TtyNr        int    // controlling terminal, 0 for none
	Init         string // /proc/1/cmdline, NULs as spaces
	UID, GID     int
	Groups       []int
	Hostname     string
	Env          []string
	Cwd          string
	Mounts       map[string]string // mount point -> "fstype options"
	CapEff       string
	CapBnd       string
	NoNewPrivs   string
	ProcSysWrite string // the error writing to /proc/sys
	DevEntries   []string
}

func info() {
	r := report{Pid: os.Getpid(), Ppid: os.Getppid(), UID: os.Getuid(), GID: os.Getgid(), Env: os.Environ(), Mounts: map[string]string{}}
	r.Groups, _ = os.Getgroups()
	r.Hostname, _ = os.Hostname()
	r.Cwd, _ = os.Getwd()
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			for i := 6; i+1 < len(f); i++ {
				if f[i] == "-" {
					r.Mounts[f[4]] = f[i+1] + " " + f[5]
					break
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "CapEff":
				r.CapEff = v
			case "CapBnd":
				r.CapBnd = v
			case "NoNewPrivs":
				r.NoNewPrivs = v
			}
		}
	}
	r.Sid, _ = unix.Getsid(0)
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		s := string(b)
		// Field 7 is tty_nr; fields after the command start at 3.
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 4 {
			r.TtyNr, _ = strconv.Atoi(f[4])
		}
	}
	if b, err := os.ReadFile("/proc/1/cmdline"); err == nil {
		r.Init = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	if err := os.WriteFile("/proc/sys/kernel/hostname", []byte(r.Hostname), 0); err != nil {
		r.ProcSysWrite = err.Error()
	}
	if es, err := os.ReadDir("/dev"); err == nil {
		for _, e := range es {
			r.DevEntries = append(r.DevEntries, e.Name())
		}
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

// orphans makes n children that each leave a grandchild behind, waits for
// the children, lets the grandchildren end, and prints how many zombies the
// namespace holds.
func orphans(n int) {
	for i := 0; i < n; i++ {
		pid, err := syscall.ForkExec("/proc/self/exe", []string{"nsguest", "orphan-parent"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
	// The grandchildren sleep 200ms; whoever is PID 1 reaps them.
	deadline := time.Now().Add(5 * time.Second)
	for {
		zombies, alive := census()
		if alive == 0 || time.Now().After(deadline) {
			fmt.Printf("zombies %d alive %d\n", zombies, alive)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// census counts the namespace's processes other than PID 1 and itself:
// zombies, and those still running or zombies (alive).
func census() (zombies, alive int) {
	es, _ := os.ReadDir("/proc")
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		alive++
		if len(f) > 0 && f[0] == "Z" {
			zombies++
		}
	}
	return zombies, alive
}
