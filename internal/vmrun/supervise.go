package vmrun

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlmux"
	"github.com/ginit-dev/ginit/internal/qemu"
)

// A VM's supervisor is a small process of its own (ginitctl re-executed,
// in its own session, so the VM outlives the command that started it and
// the terminal's signals). It starts QEMU, says on its report pipe when
// QEMU runs, waits for it, writes status.json and says the status, and
// removes the VM's directory when the run asked for --rm. The report pipe
// carries lines: "running", then the Status as JSON (once --rm is done);
// or "failed: WHY".
const reportRunning = "running"

// Supervise boots the VM in dir and sees it to its end. report is the pipe
// to the command that started it, nil when there is none; what it says
// there is also what it leaves in the directory, so a run that stopped
// listening loses nothing.
func Supervise(dir VMDir, report io.Writer) error {
	if report == nil {
		report = io.Discard
	}
	say := func(line string) { _, _ = io.WriteString(report, line+"\n") }
	info, err := dir.ReadInfo()
	if err == nil && len(info.QEMU) == 0 {
		err = fmt.Errorf("%s: no QEMU command line", dir.Info())
	}
	if err != nil {
		say("failed: " + err.Error())
		return err
	}
	log, err := os.OpenFile(dir.QEMULog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		say("failed: " + err.Error())
		return err
	}
	defer log.Close()
	stopShares, err := startVirtiofsds(info.Shares)
	if err != nil {
		say("failed: " + err.Error())
		return err
	}
	defer stopShares()
	cmd := exec.Command(info.QEMU[0], info.QEMU[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = string(dir), log, log
	if err := cmd.Start(); err != nil {
		say("failed: " + err.Error())
		return err
	}
	started := time.Now().UTC()
	// Without its pid no command can find the VM running: it does not run.
	if err := os.WriteFile(dir.PID(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		say("failed: " + err.Error())
		return err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var waitErr error
	// QEMU runs the machine once it answers on its monitor.
	for ready := false; !ready; {
		select {
		case waitErr = <-waited:
			why := fmt.Sprintf("QEMU ended as it started (%v): %s", waitErr, lastLine(dir.QEMULog()))
			say("failed: " + why)
			return errors.New(why)
		case <-time.After(50 * time.Millisecond):
			ready = qemu.QMPReady(dir.QMP())
		}
	}
	say(reportRunning)
	heard := serveChannel(dir, func(format string, args ...any) {
		fmt.Fprintf(log, "ginitctl supervisor: "+format+"\n", args...)
	})
	waitErr = <-waited
	code := cmd.ProcessState.ExitCode()
	_, kerr := os.Stat(dir.Killed())
	st := Status{QEMU: cmd.ProcessState.String(), Started: started, Ended: time.Now().UTC()}
	if waitErr != nil && code < 0 {
		st.QEMU = waitErr.Error()
	}
	st.Exit, st.From = workloadStatus(heard(), dir.consoleTail(), code, kerr == nil)
	err = writeJSON(dir.Status(), st, 0o600)
	if info.Config.Remove {
		err = os.RemoveAll(string(dir))
	}
	// Said last: a foreground run that returns on it finds --rm done.
	if b, jerr := json.Marshal(st); jerr == nil {
		say(string(b))
	}
	return err
}

// exitWait is how long the supervisor, once QEMU has ended, waits for
// what the control channel said before it to be read: longer than the
// mux stalls on a client that reads nothing (5 s), behind which the
// exited event may wait.
const exitWait = 7 * time.Second

// serveChannel holds the supervisor's control port from now until QEMU
// ends. Once ginit answers there, it serves the channel on dir.Channel()
// to any number of clients at once (a ctlmux over the port), and listens
// for the workload's exited event itself. The function it returns is
// called once QEMU has ended (which closes the port's socket, so that what
// is left is read and the channel ends) and gives the workload's status,
// nil when the channel did not say it: an image without the channel, or a
// machine that stopped before the event.
func serveChannel(dir VMDir, logf func(format string, args ...any)) func() *int {
	ctx, cancel := context.WithCancel(context.Background())
	heard := make(chan *int, 1)
	go func() {
		told := false
		tell := func(exit *int) {
			if !told {
				told = true
				heard <- exit
			}
		}
		defer tell(nil)
		mux, err := ctlmux.Dial(ctx, dir.SupervisorControl(), logf)
		if err != nil {
			return
		}
		defer mux.Close()
		if l, err := mux.Listen(dir.Channel()); err != nil {
			logf("control channel for clients: %v; they use the ports", err)
		} else {
			defer l.Close()
		}
		c, err := mux.Client(ctx)
		if err != nil {
			return
		}
		defer c.Close()
		if code, err := c.WaitExit(ctx); err == nil {
			tell(&code)
		} else {
			tell(nil)
		}
		// Clients are served until QEMU has ended.
		<-ctx.Done()
	}()
	return func() *int {
		defer cancel()
		select {
		case exit := <-heard:
			return exit
		case <-time.After(exitWait):
			return nil
		}
	}
}

// lastLine is a file's last line, for a message.
func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// Supervised is a VM whose supervisor this process started.
type Supervised struct {
	Dir    VMDir
	report *os.File
	lines  *bufio.Reader
}

// Start starts the supervisor of the VM in dir, which super runs (this
// program, re-executed to call Supervise with its report on file
// descriptor 3), and returns once QEMU runs. When QEMU does not start,
// the VM's directory is removed: a run that did not boot leaves nothing.
func Start(dir VMDir, super *exec.Cmd) (*Supervised, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	super.ExtraFiles = []*os.File{w}
	super.Stdin, super.Stdout, super.Stderr = nil, nil, nil
	// It keeps no directory of the caller's busy (a mount, say).
	super.Dir = "/"
	// Its own session: no terminal's signals reach the VM.
	super.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = super.Start()
	w.Close()
	if err != nil {
		r.Close()
		os.RemoveAll(string(dir))
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	go super.Wait() //nolint:errcheck // reaped while this process lives; its status is in the report
	s := &Supervised{Dir: dir, report: r, lines: bufio.NewReader(r)}
	line, err := s.lines.ReadString('\n')
	line = strings.TrimSpace(line)
	if line != reportRunning {
		r.Close()
		os.RemoveAll(string(dir))
		if why, ok := strings.CutPrefix(line, "failed: "); ok {
			return nil, errors.New(why)
		}
		return nil, fmt.Errorf("supervisor ended before QEMU ran: %w", err)
	}
	return s, nil
}

// Wait waits for the VM to end and returns its status.
func (s *Supervised) Wait() (Status, error) {
	defer s.report.Close()
	line, err := s.lines.ReadBytes('\n')
	var st Status
	if jerr := json.Unmarshal(line, &st); jerr != nil {
		if err == nil {
			err = jerr
		}
		return Status{}, fmt.Errorf("VM %s: its supervisor ended without a status: %w", s.Dir.Name(), err)
	}
	return st, nil
}

// Detach stops listening: the VM goes on without this process.
func (s *Supervised) Detach() { s.report.Close() }
