package rootfs

import "syscall"

// atimeSec is a stat's access time in seconds (where the staging marker is).
func atimeSec(st *syscall.Stat_t) int64 { return st.Atimespec.Sec }
