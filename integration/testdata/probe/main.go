// Command probe is the workload of the VM tests: each subcommand does one
// thing a test checks from the console or the disk afterwards.
//
//	probe write PATH TEXT CODE   write TEXT to PATH (no sync: that is PID 1's job), exit CODE
//	probe args ARGS...           print each argument on its own line, quoted
//	probe env                    print uid, gid, groups, cwd, the environment, hostname and /proc/cmdline
//	probe segv                   die of SIGSEGV
//	probe orphans N              leave N children to PID 1, then count zombies
//	probe stopwait PATH          wait for SIGTERM or SIGUSR1, write its name to PATH, exit 0
//	probe daemon PATH SECS       exit 0 at once, leaving a child that writes PATH after SECS
//	probe net                    print hostname, addresses, IPv4 routes, resolv.conf, hosts, hostname
//	probe net6                   the same, once a usable IPv6 address beyond link-local appears (10 s at most)
//	probe tty                    print the terminal's size and TERM (and each new size), echo a line read, then wait to be killed
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func arg(i int) string {
	if i < len(os.Args) {
		return os.Args[i]
	}
	return ""
}

// orphans starts n children through an intermediate process that exits at
// once, so each child is reparented to PID 1; then it waits for them to end
// and counts the zombies PID 1 has not reaped.
func orphans(n int) {
	// A shell-free double fork: "orphan-parent" starts the children and
	// exits without waiting for them.
	cmd := exec.Command("/proc/self/exe", "orphan-parent", strconv.Itoa(n))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Println("probe:", err)
		os.Exit(1)
	}
	time.Sleep(3 * time.Second)
	zombies := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == "1" && f[0] == "Z" {
			zombies++
		}
	}
	fmt.Printf("probe: started %d orphans; zombies=%d\n", n, zombies)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Println("probe: want a subcommand")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "write":
		if len(os.Args) != 5 {
			fmt.Println("probe: write PATH TEXT CODE")
			os.Exit(2)
		}
		code, _ := strconv.Atoi(os.Args[4])
		if err := os.WriteFile(os.Args[2], []byte(os.Args[3]+"\n"), 0o644); err != nil {
			fmt.Println("probe:", err)
			os.Exit(1)
		}
		fmt.Printf("probe: wrote %s\n", os.Args[2])
		os.Exit(code)
	case "orphan-parent":
		// Raw fork(2): the children only sleep and exit through raw system
		// calls, so a thousand of them cost no Go runtime each.
		n, _ := strconv.Atoi(arg(2))
		ts := syscall.Timespec{Nsec: 300e6}
		for i := 0; i < n; i++ {
			pid, _, errno := syscall.RawSyscall(syscall.SYS_FORK, 0, 0, 0)
			if errno != 0 {
				fmt.Println("probe: fork:", errno)
				os.Exit(1)
			}
			if pid == 0 {
				syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
				syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
			}
		}
	case "args":
		for i, a := range os.Args[2:] {
			fmt.Printf("probe: arg[%d]=%q\n", i, a)
		}
	case "env":
		wd, _ := os.Getwd()
		groups, _ := os.Getgroups()
		fmt.Printf("probe: uid=%d gid=%d groups=%v cwd=%s\n", os.Getuid(), os.Getgid(), groups, wd)
		for _, kv := range os.Environ() {
			fmt.Printf("probe: env %s\n", kv)
		}
		host, _ := os.Hostname()
		fmt.Printf("probe: hostname=%s\n", host)
		cmdline, _ := os.ReadFile("/proc/cmdline")
		fmt.Printf("probe: /proc/cmdline=%q\n", strings.TrimSpace(string(cmdline)))
	case "segv":
		// The Go runtime turns a SIGSEGV into its own exit status 2; put the
		// kernel's default action back first (a zeroed struct sigaction is
		// SIG_DFL), so the process dies of the signal as a C program would.
		fmt.Println("probe: raising SIGSEGV")
		var act [4]uint64
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGSEGV), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
		syscall.RawSyscall(syscall.SYS_TGKILL, uintptr(os.Getpid()), uintptr(syscall.Gettid()), uintptr(syscall.SIGSEGV))
		time.Sleep(time.Second)
		os.Exit(1)
	case "orphans":
		n, _ := strconv.Atoi(arg(2))
		orphans(n)
	case "steps":
		steps(os.Args[2:])
	case "stopwait":
		stopWait(arg(2))
	case "daemon":
		cmd := exec.Command("/proc/self/exe", "daemon-child", arg(2), arg(3))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fmt.Println("probe:", err)
			os.Exit(1)
		}
		fmt.Printf("probe: daemonized as pid %d\n", cmd.Process.Pid)
	case "daemon-child":
		secs, _ := strconv.Atoi(arg(3))
		time.Sleep(time.Duration(secs) * time.Second)
		_ = os.WriteFile(arg(2), []byte("written by the daemon\n"), 0o644)
	case "net":
		netReport()
	case "net6":
		waitInet6(10 * time.Second)
		netReport()
	case "tty":
		ttyReport()
	default:
		fmt.Printf("probe: unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
}

// stopWait waits for SIGTERM or SIGUSR1 and writes which came to path.
func stopWait(path string) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1)
	fmt.Println("probe: waiting for a stop signal")
	sig := <-sigs
	name := "SIGTERM"
	if sig == syscall.SIGUSR1 {
		name = "SIGUSR1"
	}
	if err := os.WriteFile(path, []byte("stopped by "+name+"\n"), 0o644); err != nil {
		fmt.Println("probe:", err)
		os.Exit(1)
	}
	fmt.Printf("probe: stopped by %s\n", name)
}

// ttyReport shows what a person at the console would see of it: the size,
// TERM, a line typed and ended with Enter; then it waits, with SIGINT's
// default action, for Ctrl-C.
func ttyReport() {
	size := func() string {
		var ws [4]uint16
		_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws)))
		return fmt.Sprintf("rows=%d cols=%d err=%v", ws[0], ws[1], errno)
	}
	fmt.Printf("probe: tty %s TERM=%s\n", size(), os.Getenv("TERM"))
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for range winch {
			fmt.Printf("probe: resized %s\n", size())
		}
	}()
	fmt.Println("probe: type a line")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Printf("probe: read %q %v\n", line, err)
	fmt.Println("probe: waiting for Ctrl-C")
	time.Sleep(time.Hour)
}
