package nsrun

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SignalRTMin is SIGRTMIN as C libraries define it, and as "SIGRTMIN+3" (the
// stop signal systemd wants) means it: the kernel's 32 and 33 are theirs.
const SignalRTMin = 34

// ParseSignal reads a signal as Docker's StopSignal takes it: "SIGTERM",
// "TERM", "15", "SIGRTMIN+3", "RTMAX-1".
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(name); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("signal %q: out of range", s)
		}
		return syscall.Signal(n), nil
	}
	name = strings.TrimPrefix(name, "SIG")
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"RTMIN+", SignalRTMin, 1}, {"RTMAX-", 64, -1}} {
		if off, ok := strings.CutPrefix(name, rt.prefix); ok {
			n, err := strconv.Atoi(off)
			sig := rt.base + rt.sign*n
			if err != nil || n < 0 || sig < SignalRTMin || sig > 64 {
				return 0, fmt.Errorf("signal %q: out of range", s)
			}
			return syscall.Signal(sig), nil
		}
	}
	switch name {
	case "RTMIN":
		return SignalRTMin, nil
	case "RTMAX":
		return 64, nil
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q: unknown", s)
}

// SignalName names sig, real-time signals as SIGRTMIN+n.
func SignalName(sig syscall.Signal) string {
	if sig >= SignalRTMin && sig <= 64 {
		return fmt.Sprintf("SIGRTMIN+%d", int(sig)-SignalRTMin)
	}
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}
