// Command floorinit is the floor of the boot benchmark: an /init that prints
// when it started and powers off at once. Whatever ginit spends beyond it is
// ginit's own overhead. The peer table also runs it from the root disk, as
// the workload every initramfs hands over to.
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	fmt.Fprintf(os.Stdout, "floorinit: started at %d ms\n", ts.Nano()/1e6)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		unix.Pause()
	}
}
