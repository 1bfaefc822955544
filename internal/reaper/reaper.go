// Package reaper is PID 1's single reaper. It reaps every child that exits,
// orphans included, and hands the exit status of the processes it started to
// whoever waits for them. Children are started through it, not os/exec, so no
// other wait4 call can steal a status.
package reaper

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reaper owns wait4 for the whole process.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	reaped  int // orphans reaped, for the logs
	sigchld chan os.Signal
}

// New starts reaping at once: every SIGCHLD reaps all exited children.
func New() *Reaper {
	r := &Reaper{waiters: map[int]chan unix.WaitStatus{}, sigchld: make(chan os.Signal, 1)}
	signal.Notify(r.sigchld, unix.SIGCHLD)
	go r.loop()
	return r
}

func (r *Reaper) loop() {
	// A panic here would stop reaping for good; recovering keeps PID 1 up
	// and the loop going.
	for {
		func() {
			defer func() { _ = recover() }()
			for range r.sigchld {
				r.Reap()
			}
		}()
	}
}

// Reap collects every exited child now, and returns how many it collected.
func (r *Reaper) Reap() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return n
		}
		n++
		if ch, ok := r.waiters[pid]; ok {
			ch <- ws
			delete(r.waiters, pid)
		} else {
			r.reaped++
		}
	}
}

// Orphans returns how many children were reaped that nobody waited for.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}

// Start forks and execs argv0 with attr, and returns its pid and a channel
// that receives its wait status once. The lock held across the fork keeps the
// reaper from collecting the child before its waiter is registered.
func (r *Reaper) Start(argv0 string, argv []string, attr *syscall.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv0, argv, attr)
	if err != nil {
		return 0, nil, fmt.Errorf("exec %s: %w", argv0, err)
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

// ExitCode turns a wait status into a shell-style exit code: the status, or
// 128+signal for a process killed by a signal.
func ExitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}
