// Command stage2 is the /init of a small second-stage initramfs for the
// LinuxBoot VM tests: booted by kexec from the machine's disk, it prints
// which kernel runs and with what command line, so a test can tell that
// the kernel and command line of the disk's boot config are the ones
// running, and powers off. stage2.status=N on its command line becomes
// QEMU's exit status through isa-debug-exit.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/shutdown"
)

func main() {
	_ = os.MkdirAll("/dev", 0o755)
	_ = unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	_ = os.MkdirAll("/proc", 0o755)
	_ = unix.Mount("proc", "/proc", "proc", 0, "")
	// Only emergencies from the kernel on the console from here on, so
	// its messages do not land in the middle of the line the test reads.
	_ = os.WriteFile("/proc/sys/kernel/printk", []byte("1"), 0)
	con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		con = os.Stdout
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Fprintf(con, "stage2: read /proc/cmdline: %v\n", err)
	}
	cmdline := strings.TrimSpace(string(b))
	fmt.Fprintf(con, "stage2: running, kernel %s, cmdline %s\n", unix.ByteSliceToString(uts.Release[:]), cmdline)
	status := 0
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, "stage2.status="); ok {
			status, _ = strconv.Atoi(v)
		}
	}
	unix.Sync()
	if err := shutdown.DebugExit(0xf4, status); err != nil {
		fmt.Fprintf(con, "stage2: %v\n", err)
	}
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}
