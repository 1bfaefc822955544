package qemu

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"

	"github.com/ginit-dev/ginit/internal/pty"
)

// RunInTerminal runs argv, QEMU or a script that runs it with its serial
// console on stdio, in dir with a pseudo-terminal as its standard input,
// output and error and as its controlling terminal, as in a person's
// terminal window: QEMU puts the terminal in raw mode, Enter arrives as CR,
// and the guest's "\r\n" comes out as "\r\r\n". Triggers type their Input
// into the terminal; they cannot send monitor commands. The console is the
// terminal's output as it arrived. QEMUExit is argv's exit status; timeout
// ends argv's whole process group.
func RunInTerminal(ctx context.Context, dir string, argv []string, triggers []Trigger, timeout time.Duration) (Result, error) {
	for _, tr := range triggers {
		if tr.Command != "" {
			return Result{}, fmt.Errorf("trigger %q: monitor command %q: a terminal run has no monitor", tr.When, tr.Command)
		}
	}
	master, slave, err := pty.Open()
	if err != nil {
		return Result{}, err
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	out := &consoleWriter{triggers: triggers, start: start, stdin: master}
	err = cmd.Start()
	slave.Close() // the terminal ends when argv and its children have closed it
	if err != nil {
		return Result{}, fmt.Errorf("start %s: %w", argv[0], err)
	}
	copied := make(chan struct{})
	go func() {
		// Reading the master fails with EIO once no process holds the slave.
		_, _ = io.Copy(out, master)
		close(copied)
	}()
	err = cmd.Wait()
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // a child of argv still holds the terminal
	}
	return out.result(ctx, err, argv[0], timeout)
}
