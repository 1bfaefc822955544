package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/ctlserver/ctltest"
	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// busyboxTools are the commands the exec tests' roots get.
var busyboxTools = []string{"sh", "cat", "echo", "id", "ls", "sleep", "stty", "wc", "grep", "true", "kill", "env", "nc", "touch", "readlink"}

// busyboxRoot is probeRoot with the host's static busybox as /bin/sh and
// friends: a shell for exec to run.
func busyboxRoot(t *testing.T, a Artifacts, imageConfig map[string]any) string {
	t.Helper()
	testenv.NeedFile(t, "/bin/busybox", "scripts/install-deps.sh installs busybox-static")
	root := probeRoot(t, a, imageConfig)
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range busyboxTools {
		if err := os.Symlink("busybox", filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// controlVM is a running VM with the control port, and a client on it.
type controlVM struct {
	sock string
	c    *ctlclient.Client
	done chan struct{}
	res  qemu.Result
	err  error
	cons *ctltest.Buffer
}

// bootControl boots disk with the control port in the background and
// connects once the workload runs.
func bootControl(t *testing.T, a Artifacts, disk string) *controlVM {
	t.Helper()
	return bootControlPhase(t, a, disk, ctlproto.PhaseRunning)
}

// bootControlPhase is bootControl that returns once the status says phase
// or a later one.
func bootControlPhase(t *testing.T, a Artifacts, disk, phase string) *controlVM {
	t.Helper()
	return bootControlVM(t, a, VM{Disk: disk, NoNet: true, Timeout: 10 * time.Minute}, phase)
}

// bootControlVM is bootControlPhase for vm.
func bootControlVM(t *testing.T, a Artifacts, vm VM, phase string) *controlVM {
	t.Helper()
	dir, err := os.MkdirTemp("", "ginit-ctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	v := &controlVM{sock: filepath.Join(dir, "control.sock"), done: make(chan struct{}), cons: &ctltest.Buffer{}}
	q := a.QEMU(vm)
	q.ControlSocket, q.Tee = v.sock, v.cons
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(v.done)
		v.res, v.err = q.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-v.done
		if t.Failed() {
			t.Logf("console:\n%s", v.cons.String())
		}
	})
	v.c = v.dial(t)
	for {
		st, err := v.c.Status(context.Background())
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		if st.Phase == phase || st.Phase == ctlproto.PhaseRunning {
			t.Logf("status: %+v", st)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return v
}

// dial connects to the VM's channel, waiting for QEMU's socket and ginit's
// hello.
func (v *controlVM) dial(t *testing.T) *ctlclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		c, err := ctlclient.DialFree(ctx, qemu.ControlSockets(v.sock))
		if err == nil {
			return c
		}
		select {
		case <-v.done:
			t.Fatalf("the VM ended before the control channel answered: %v, %v", v.err, err)
		case <-ctx.Done():
			t.Fatalf("control channel: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// run execs spec and returns its status and output.
func (v *controlVM) run(t *testing.T, spec ctlproto.ExecSpec) (int, string) {
	t.Helper()
	var out bytes.Buffer
	e, err := v.c.Exec(spec, nil, &out, &out)
	if err != nil {
		t.Fatalf("exec %q: %v", spec.Argv, err)
	}
	code, err := e.Wait()
	if err != nil {
		t.Fatalf("exec %q: %v (output %q)", spec.Argv, err, out.String())
	}
	return code, out.String()
}

// fdsAndZombies counts ginit's open fds and the zombies in the machine,
// and lists the fds. The counting command's own pipes are left out: ginit
// holds their ends while it runs, and for a moment after its start also
// the command's. So are the power button's input devices: ginit opens them
// when their drivers, loaded at idle priority after the workload starts, bind,
// which on a loaded machine can fall between two counts.
func (v *controlVM) fdsAndZombies(t *testing.T) (fds, zombies int, list string) {
	t.Helper()
	code, out := v.run(t, ctlproto.ExecSpec{Argv: []string{"sh", "-c", `
		o=$(readlink /proc/$$/fd/1); e=$(readlink /proc/$$/fd/2)
		ls -l /proc/1/fd | grep -v -F -e "$o" -e "$e" -e /dev/input/ >/tmp/fds
		wc -l </tmp/fds; grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l; cat /tmp/fds`}})
	f := strings.Fields(out)
	if code != 0 || len(f) < 2 {
		t.Fatalf("counting fds and zombies: %d, %q", code, out)
	}
	fds, _ = strconv.Atoi(f[0])
	zombies, _ = strconv.Atoi(f[1])
	return fds, zombies, out
}

// The control channel: exec with output and statuses, env, workdir and
// users, a terminal, signals; garbage on the port changes nothing; many
// execs leak nothing; stop goes through the power button's path and the
// events tell it.
func TestControlChannel(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := a.MakeDisk(t, busyboxRoot(t, a, map[string]any{
		"Entrypoint": []string{"/app/probe", "stopwait", "/stopped.txt"},
		"Env":        []string{"PATH=/bin", "FROM_IMAGE=yes"},
		"WorkingDir": "/app",
	}))
	v := bootControl(t, a, disk)

	t.Run("output and status", func(t *testing.T) {
		if code, out := v.run(t, ctlproto.ExecSpec{Argv: []string{"echo", "hello", "world"}}); code != 0 || out != "hello world\n" {
			t.Errorf("echo: %d, %q", code, out)
		}
		if code, out := v.run(t, ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo to-stderr >&2; exit 42"}}); code != 42 || out != "to-stderr\n" {
			t.Errorf("exit 42: %d, %q", code, out)
		}
		e, err := v.c.Exec(ctlproto.ExecSpec{Argv: []string{"/no/such/command"}}, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var se *ctlclient.StartError
		if code, err := e.Wait(); code != 127 || !errors.As(err, &se) {
			t.Errorf("a missing command: %d, %v; want 127 and why", code, err)
		}
	})

	t.Run("the workload's env, workdir and user, or the ones given", func(t *testing.T) {
		script := `echo "$(id -u):$(id -g) $PWD $FROM_IMAGE $EXTRA $HOME"`
		if code, out := v.run(t, ctlproto.ExecSpec{Argv: []string{"sh", "-c", script}}); code != 0 || out != "0:0 /app yes  /root\n" {
			t.Errorf("as the workload: %d, %q", code, out)
		}
		code, out := v.run(t, ctlproto.ExecSpec{Argv: []string{"sh", "-c", script}, User: "app", Dir: "/tmp", Env: []string{"EXTRA=given"}})
		if code != 0 || out != "1000:1000 /tmp yes given /home/app\n" {
			t.Errorf("as app in /tmp: %d, %q", code, out)
		}
	})

	t.Run("terminal", func(t *testing.T) {
		var out ctltest.Buffer
		keys, typer := io.Pipe()
		defer typer.Close()
		e, err := v.c.Exec(ctlproto.ExecSpec{Argv: []string{"sh"}, TTY: true, Stdin: true, Size: &ctlproto.WinSize{Rows: 30, Cols: 90}}, keys, &out, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Enter is CR on a real terminal; the guest's terminal makes it a
		// line end.
		fmt.Fprint(typer, "stty size; echo sum=$((6*7))\r")
		out.WaitFor(t, "sum=42")
		out.WaitFor(t, "30 90")
		if err := e.Resize(40, 100); err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(typer, "stty size; tty\r")
		out.WaitFor(t, "40 100")
		out.WaitFor(t, "/dev/pts/")
		fmt.Fprint(typer, "exit 3\r")
		if code, err := e.Wait(); code != 3 || err != nil {
			t.Errorf("exit 3 in the terminal: %d, %v", code, err)
		}
	})

	t.Run("signal to an exec", func(t *testing.T) {
		var out ctltest.Buffer
		e, err := v.c.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo ready; exec sleep 1000"}}, nil, &out, nil)
		if err != nil {
			t.Fatal(err)
		}
		out.WaitFor(t, "ready")
		if err := e.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code, err := e.Wait(); code != 128+int(syscall.SIGTERM) || err != nil {
			t.Errorf("SIGTERM: %d, %v; want %d", code, err, 128+int(syscall.SIGTERM))
		}
	})

	t.Run("two clients at once, on two ports", func(t *testing.T) {
		var out ctltest.Buffer
		e, err := v.c.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", "echo first; exec sleep 1000"}}, nil, &out, nil)
		if err != nil {
			t.Fatal(err)
		}
		out.WaitFor(t, "first")
		other := v.dial(t) // the first port is taken: the next one
		var out2 bytes.Buffer
		e2, err := other.Exec(ctlproto.ExecSpec{Argv: []string{"echo", "second"}}, nil, &out2, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code, err := e2.Wait(); code != 0 || err != nil || out2.String() != "second\n" {
			t.Errorf("exec on the second port while the first runs: %d, %v, %q", code, err, out2.String())
		}
		other.Close()
		e.Signal(syscall.SIGKILL)
		if code, _ := e.Wait(); code != 137 {
			t.Errorf("the first exec: %d; want 137", code)
		}
	})

	t.Run("garbage on the port", func(t *testing.T) {
		v.c.Close()
		raw, err := net.Dial("unix", v.sock)
		if err != nil {
			t.Fatal(err)
		}
		garbage := append([]byte("\x00\xffnot a frame\r\nGCTL\x00\x00\x00\x05{{{{{GCTL"), bytes.Repeat([]byte{0xa5}, 100000)...)
		bad, _ := ctlproto.Encode(&ctlproto.Message{Session: 7, Type: ctlproto.Exec, Exec: &ctlproto.ExecSpec{Argv: []string{"true"}}})
		bad = bytes.Replace(bad, []byte(`"argv":["true"]`), []byte(`"argv":[1,2]   `), 1)
		raw.Write(append(garbage, bad...))
		raw.Close()
		v.c = v.dial(t)
		st, err := v.c.Status(context.Background())
		if err != nil || st.Phase != ctlproto.PhaseRunning {
			t.Errorf("after garbage: %+v, %v; want the workload running", st, err)
		}
		if code, out := v.run(t, ctlproto.ExecSpec{Argv: []string{"echo", "still"}}); code != 0 || out != "still\n" {
			t.Errorf("exec after garbage: %d, %q", code, out)
		}
	})

	t.Run("many execs leave no fd and no zombie", func(t *testing.T) {
		fds, zombies, before := v.fdsAndZombies(t)
		n := 1000
		if testing.Short() {
			n = 40
		}
		// Over every port at once, and two sessions on each, as several
		// clients would: the round trips overlap.
		clients := []*ctlclient.Client{v.c}
		for range qemu.ControlPorts - 1 {
			c := v.dial(t)
			defer c.Close()
			clients = append(clients, c)
		}
		const perPort = 2
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, len(clients)*perPort)
		start := time.Now()
		for _, c := range clients {
			for range perPort {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1); i <= int64(n); i = next.Add(1) {
						e, err := c.Exec(ctlproto.ExecSpec{Argv: []string{"true"}}, nil, nil, nil)
						if err == nil {
							var code int
							if code, err = e.Wait(); err == nil && code != 0 {
								err = fmt.Errorf("status %d", code)
							}
						}
						if err != nil {
							errs <- fmt.Errorf("exec %d: %w", i, err)
							return
						}
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		t.Logf("%d execs in %v over %d ports, %d sessions each; ginit had %d fds", n, time.Since(start).Round(time.Millisecond), len(clients), perPort, fds)
		fds2, zombies2, after := v.fdsAndZombies(t)
		// Fewer is no leak: the count before may hold a file of the
		// late driver scan (a device's modalias in /sys, seen here).
		if fds2 > fds || zombies2 > zombies {
			t.Errorf("after %d execs: ginit has %d fds (was %d), %d zombies (was %d):\nbefore:\n%s\nafter:\n%s", n, fds2, fds, zombies2, zombies, before, after)
		}
	})

	t.Run("stop and its events", func(t *testing.T) {
		events := make(chan string, 8)
		subscribed := make(chan struct{})
		go func() {
			defer close(events)
			err := v.c.Events(context.Background(), func(st *ctlproto.Status, ev *ctlproto.EventMsg) {
				switch {
				case st != nil:
					close(subscribed)
				case ev.Exit != nil:
					events <- fmt.Sprintf("%s %d", ev.Name, *ev.Exit)
				default:
					events <- ev.Name
				}
			})
			if err != nil {
				events <- err.Error()
			}
		}()
		<-subscribed
		if _, err := v.c.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for e := range events {
			got = append(got, e)
		}
		if strings.Join(got, ",") != "stopping,exited 0" {
			t.Errorf("events = %q; want stopping, exited 0", got)
		}
		<-v.done
		if v.err != nil {
			t.Fatalf("VM: %v", v.err)
		}
		if !strings.Contains(v.res.Console, "entrypoint exited with status 0") {
			t.Errorf("console lacks the workload's status")
		}
		if got := DebugfsCat(t, disk, "/stopped.txt"); got != "stopped by SIGTERM\n" {
			t.Errorf("/stopped.txt = %q; want stopped by SIGTERM", got)
		}
		noPanic(t, v.res)
	})
}

// With ExposedPorts the workload is ready once each port accepts
// connections inside the machine: the ready event comes after the server
// listens, and the status says so.
// wantReadyThenStop checks that the events a subscription got end as a
// workload's that was ready and then stopped through the channel.
func wantReadyThenStop(t *testing.T, got []string) {
	t.Helper()
	if n := len(got); n < 3 || got[n-3] != "ready" || got[n-2] != "stopping" || got[n-1] != "exited" {
		t.Errorf("events %q; want ready, stopping, exited at the end", got)
	}
}

func TestControlReadiness(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := a.MakeDisk(t, busyboxRoot(t, a, map[string]any{
		"Entrypoint":   []string{"sh", "-c", "sleep 2; touch /listening; exec nc -ll -p 8080 -e /bin/true"},
		"Env":          []string{"PATH=/bin"},
		"ExposedPorts": map[string]any{"8080/tcp": map[string]any{}, "53/udp": map[string]any{}},
	}))
	v := bootControlPhase(t, a, disk, ctlproto.PhaseStarting)
	var got []string
	onReady := func() {
		got = append(got, "ready")
		// Ready: the server must have been started.
		if code, out := v.run(t, ctlproto.ExecSpec{Argv: []string{"ls", "/listening"}}); code != 0 {
			t.Errorf("ready before the server listened: %d, %q", code, out)
		}
		if st, err := v.c.Status(context.Background()); err != nil || !st.Ready {
			t.Errorf("status after the ready event: %+v, %v", st, err)
		}
		if _, err := v.c.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	err := v.c.Events(context.Background(), func(st *ctlproto.Status, ev *ctlproto.EventMsg) {
		switch {
		case st != nil && st.Ready: // it was ready before the subscription
			onReady()
		case st != nil:
			got = append(got, "status:"+st.Phase)
		case ev.Name == ctlproto.EventReady:
			onReady()
		default:
			got = append(got, ev.Name)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	wantReadyThenStop(t, got)
	<-v.done
	noPanic(t, v.res)
}
