package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/bootcfg"
	"github.com/ginit-dev/ginit/internal/reaper"
	"github.com/ginit-dev/ginit/internal/shutdown"
)

// osbootPath is the command that finds the operating system on the disks
// and loads its kernel. ginit does not link the boot loader code itself:
// only the images that boot installed systems (linuxboot) carry it.
const osbootPath = "/bbin/osboot"

// bootOS boots the operating system installed on the machine's disks: osboot
// finds it and loads its kernel, and the boot ends in a kexec of that kernel
// after the machine is stopped as for a poweroff. rootErr is why no
// container root was used when auto mode falls back to this (nil for
// ginit.mode=boot); an image without osboot fails with it, as it would
// without boot mode.
func (s *system) bootOS(cfg bootcfg.Config, rootErr error) (*ending, error) {
	if _, err := os.Stat(osbootPath); err != nil {
		if rootErr != nil {
			return nil, rootErr
		}
		return nil, fmt.Errorf("ginit.mode=boot needs the osboot command, which this image does not carry (%w); the linuxboot image has it", err)
	}
	s.b.mark("osboot")
	args := osbootArgs(cfg, rootErr != nil)
	s.b.log.Infof("looking for an operating system on the disks: %s", strings.Join(args, " "))
	msg, code, stopped, err := s.runOsboot(args)
	if stopped != nil {
		return stopped, nil
	}
	if err == nil && code == 0 {
		s.b.mark("loaded")
		s.b.logTiming()
		end := endIn(shutdown.Kexec, 0)
		return &end, nil
	}
	if err == nil {
		err = osbootError(msg, code)
	}
	if rootErr != nil {
		return nil, fmt.Errorf("%w; and no operating system to boot: %w", rootErr, err)
	}
	return nil, fmt.Errorf("ginit.mode=boot: %w", err)
}

// osbootArgs is osboot's command line: load the kernel and leave the
// reboot to ginit. In boot mode it waits for a disk as long as rootwait
// says; in auto mode ginit has waited that long for the container disk
// already. osboot.entry= and osboot.append= on the kernel command line
// pick the entry and add to its command line.
func osbootArgs(cfg bootcfg.Config, auto bool) []string {
	wait := cfg.RootWait
	if auto {
		wait = 0
	}
	args := []string{"osboot", "-load", "-wait", wait.String()}
	if cfg.OsbootEntry != "" {
		args = append(args, "-entry", cfg.OsbootEntry)
	}
	if cfg.OsbootAppend != "" {
		args = append(args, "-append", cfg.OsbootAppend)
	}
	return args
}

// osbootError is osboot's failure as one line: its last words on stderr
// without their prefix, the panic when it panicked, or its exit status when
// it said nothing.
func osbootError(stderr string, code int) error {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "panic: ") {
			return fmt.Errorf("%s: %s", osbootPath, strings.TrimSpace(l))
		}
	}
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return fmt.Errorf("%s exited with status %d", osbootPath, code)
	}
	return errors.New(strings.TrimPrefix(last, "osboot: "))
}

// maxStderr bounds what is kept of osboot's stderr; the rest is read and
// dropped, so osboot never blocks on a full pipe.
const maxStderr = 16 << 10

// cappedBuffer keeps the first maxStderr bytes written to it.
type cappedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := maxStderr - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// runOsboot runs osboot with its output on the console and its stderr,
// where it gives its reason for failing, read back. A stop request (SIGTERM,
// SIGINT, SIGPWR) ends osboot, and stopped says how the machine ends then:
// as onexit says, with 128+signal.
func (s *system) runOsboot(args []string) (stderr string, code int, stopped *ending, err error) {
	tty, _, err := s.console()
	if err != nil {
		return "", 0, nil, err
	}
	defer tty.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return "", 0, nil, fmt.Errorf("pipe for %s: %w", osbootPath, err)
	}
	defer r.Close()
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   os.Environ(),
		Files: []uintptr{tty.Fd(), tty.Fd(), w.Fd()},
	}
	pid, done, err := s.reaper.Start(osbootPath, args, attr)
	w.Close()
	if err != nil {
		return "", 0, nil, err
	}
	var buf cappedBuffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, r)
		close(copied)
	}()
	for {
		select {
		case ws := <-done:
			// osboot is gone; what it wrote is in the pipe or on its way.
			select {
			case <-copied:
			case <-time.After(time.Second):
			}
			buf.mu.Lock()
			defer buf.mu.Unlock()
			return string(buf.b), reaper.ExitCode(ws), nil, nil
		case sig := <-s.b.signals:
			sg := sig.(syscall.Signal)
			if !isStopRequest(sg) {
				continue
			}
			s.b.log.Infof("received %s while looking for an operating system: stopping", unix.SignalName(sg))
			_ = unix.Kill(pid, unix.SIGKILL)
			<-done
			end := exited(128 + int(sg))
			return "", 0, &end, nil
		}
	}
}
