// Package klog is ginit's logger: every line goes to the kernel log
// (/dev/kmsg, so dmesg has it) and to the console, prefixed "ginit: ".
package klog

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Level orders messages by importance.
type Level int

// The levels, as syslog numbers them.
const (
	Error Level = 3
	Warn  Level = 4
	Info  Level = 6
	Debug Level = 7
)

// Logger writes to the console and the kernel log. The zero value writes
// nowhere; New opens the real devices.
type Logger struct {
	mu      sync.Mutex
	console io.Writer // nil: no console
	kmsg    io.Writer // nil: no kernel log
	// ConsoleLevel is the least important level printed on the console.
	ConsoleLevel Level
}

// New returns a logger for PID 1: console is where lines are printed (ginit's
// stdout, which the kernel opened on /dev/console) and the kernel log is
// opened when it can be.
func New(console io.Writer) *Logger {
	l := &Logger{console: console, ConsoleLevel: Info}
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		l.kmsg = f
		// Writes to /dev/kmsg are rate limited to 10 lines per 5 s unless
		// this is on; a boot writes more than that.
		_ = os.WriteFile("/proc/sys/kernel/printk_devkmsg", []byte("on\n"), 0)
	}
	return l
}

// NewWriter returns a logger that writes lines to w alone, for tests and tools.
func NewWriter(w io.Writer) *Logger { return &Logger{console: w, ConsoleLevel: Debug} }

// SetOutputs replaces the console and the kernel log, for tests.
func (l *Logger) SetOutputs(console, kmsg io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.console, l.kmsg = console, kmsg
}

// Since returns the time since the kernel started (CLOCK_BOOTTIME), the same
// clock as the kernel log's timestamps.
func Since() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

func (l *Logger) log(level Level, format string, args ...any) {
	msg := strings.TrimRight(fmt.Sprintf(format, args...), "\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(msg, "\n") {
		if l.kmsg != nil {
			// Debug priority: the kernel does not echo it to the console at
			// the default loglevel, so the console shows each line once.
			// Facility user (1) keeps it apart from the kernel's own lines.
			fmt.Fprintf(l.kmsg, "<%d>ginit: %s\n", 8+int(Debug), line)
		}
		if l.console != nil && level <= l.ConsoleLevel {
			fmt.Fprintf(l.console, "ginit: %s\n", line)
		}
	}
}

// Errorf logs a failure.
func (l *Logger) Errorf(format string, args ...any) { l.log(Error, format, args...) }

// Warnf logs something wrong that the boot goes on past.
func (l *Logger) Warnf(format string, args ...any) { l.log(Warn, format, args...) }

// Infof logs a step of the boot.
func (l *Logger) Infof(format string, args ...any) { l.log(Info, format, args...) }

// Statusf logs a line the host reads off the console (the workload's exit
// status): printed whatever ConsoleLevel says, since a quiet boot must
// still tell the host how the workload ended.
func (l *Logger) Statusf(format string, args ...any) { l.log(0, format, args...) }

// Debugf logs detail for ginit.debug.
func (l *Logger) Debugf(format string, args ...any) { l.log(Debug, format, args...) }
