package imagespec

import "syscall"

const noAtime = syscall.O_NOATIME
