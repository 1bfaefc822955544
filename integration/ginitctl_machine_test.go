package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/pty"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// helloImage packs the bundled example server as an OCI layout, as
// scripts/demo.sh does, and returns its reference for ginitctl.
func (a Artifacts) helloImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"app", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/resolv.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{
		{"go", "build", "-trimpath", "-o", filepath.Join(root, "app/hello-server"), "./examples/hello-server"},
		{"go", "run", "./examples/mkoci", "--owner", "0:0", "--entrypoint", "/app/hello-server",
			"--env", "GREETING=hello-from-the-image", "--expose", "8080/tcp", "--stop-signal", "SIGTERM",
			"--name", "hello", root, filepath.Join(dir, "oci")},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = a.Repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "SOURCE_DATE_EPOCH=1700000000")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%q: %v\n%s", argv, err, out)
		}
	}
	return "oci:" + filepath.Join(dir, "oci") + ":hello"
}

// get fetches url until the VM's server answers, or the run ends.
func get(t *testing.T, url string, ended <-chan struct{}) string {
	t.Helper()
	client := http.Client{Timeout: 3 * time.Second}
	for deadline := time.Now().Add(4 * time.Minute); time.Now().Before(deadline); {
		resp, err := client.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
		}
		select {
		case <-ended:
			t.Fatalf("GET %s: the run ended before the server answered", url)
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Fatalf("GET %s: no answer", url)
	return ""
}

// -p forwards a host port to the guest's server; -P publishes the image's
// ExposedPorts on free loopback ports and prints them; a host port in use
// fails before anything is made.
func TestGinitctlPublish(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	tmp := t.TempDir()
	ctl := a.buildGinitctl(t, tmp)
	image := a.helloImage(t)
	state := filepath.Join(tmp, "state")
	base := []string{"run", "--state", state, "--kernel", a.Kernel, "--initrd", a.Initrd}

	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	out, err := exec.Command(ctl, append(base, "-p", "127.0.0.1:"+busyPort+":8080", image)...).CombinedOutput()
	want := "ginitctl: publish 8080/tcp: host port 127.0.0.1:" + busyPort + "/tcp is already in use\n"
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 125 || string(out) != want {
		t.Errorf("ginitctl run -p %s:8080 (in use) = %v, %q; want status 125 and %q", busyPort, err, out, want)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "vms", "*")); len(left) != 0 {
		t.Errorf("a port in use left %v", left)
	}

	port := strconv.Itoa(freePort(t))
	cmd := exec.Command(ctl, append(base, "--rm", "-p", "127.0.0.1:"+port+":8080", "-P", image)...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close(); close(ended) }()
	defer func() {
		select {
		case <-ended:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()
	var console bytes.Buffer
	published := regexp.MustCompile(`^8080/tcp -> 127\.0\.0\.1:(\d+)$`)
	var ports []string
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			console.WriteString(sc.Text() + "\n")
			if m := published.FindStringSubmatch(sc.Text()); m != nil {
				ports = append(ports, m[1])
			}
			if strings.Contains(sc.Text(), "hello-server: listening") {
				close(listening)
			}
		}
	}()
	select {
	case <-listening:
	case <-ended:
		t.Fatalf("the run ended before the server listened:\n%s", console.String())
	case <-time.After(5 * time.Minute):
		t.Fatalf("the server did not start:\n%s", console.String())
	}
	// -P lists every published port, -p's too, as docker port does.
	if len(ports) != 2 || ports[0] != port || ports[1] == port {
		t.Fatalf("printed ports %v; want %s (-p) and a free one (-P):\n%s", ports, port, console.String())
	}
	for _, p := range ports {
		if body := get(t, "http://127.0.0.1:"+p+"/", ended); !strings.Contains(body, `greeting "hello-from-the-image"`) {
			t.Errorf("GET 127.0.0.1:%s = %q; want the example server's greeting", p, body)
		}
	}
	// Ctrl-C, as a terminal sends it to the whole group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("ginitctl run after Ctrl-C: %v; want status 0 (the server stops on SIGTERM):\n%s", err, console.String())
	}
	if left, _ := filepath.Glob(filepath.Join(state, "vms", "*")); len(left) != 0 {
		t.Errorf("--rm left %v", left)
	}
}

// keystroke is what a person does once the screen shows when: types keys,
// or resizes the window.
type keystroke struct {
	when, keys string
	resize     *unix.Winsize
}

// terminalRun is a command run in a terminal of 33 rows and 101 columns:
// what the screen showed, how it ended, and whether the terminal's modes
// were as before afterwards.
type terminalRun struct {
	screen   string
	err      error
	restored bool
}

// runInTerminal runs argv with a new pseudo-terminal as its controlling
// terminal and stdio, types each keystroke when its text shows, and waits
// for argv to end.
func runInTerminal(t *testing.T, argv []string, keys []keystroke) terminalRun {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
		}
	}()
	var screen bytes.Buffer
	buf := make([]byte, 4096)
	for len(keys) > 0 {
		master.SetReadDeadline(time.Now().Add(5 * time.Minute))
		n, err := master.Read(buf)
		screen.Write(buf[:n])
		if err != nil {
			t.Fatalf("terminal: %v after:\n%s", err, screen.String())
		}
		if strings.Contains(screen.String(), keys[0].when) {
			if keys[0].resize != nil {
				err = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, keys[0].resize)
			} else {
				_, err = master.Write([]byte(keys[0].keys))
			}
			if err != nil {
				t.Fatal(err)
			}
			keys = keys[1:]
		}
	}
	// Read on until the terminal closes, so the command never blocks on it.
	var rest bytes.Buffer
	copied := make(chan struct{})
	master.SetReadDeadline(time.Time{})
	go func() { io.Copy(&rest, master); close(copied) }()
	var run terminalRun
	select {
	case run.err = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("%q did not end after its last keys:\n%s", argv, screen.String())
	}
	after, terr := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	run.restored = terr == nil && after.Lflag == before.Lflag && after.Iflag == before.Iflag && after.Oflag == before.Oflag
	slave.Close()
	select {
	case <-copied: // reading fails once no process holds the terminal
	case <-time.After(10 * time.Second):
		t.Fatalf("the terminal stayed open after %q ended", argv)
	}
	run.screen = screen.String() + rest.String()
	return run
}

// ginitctl run -it in a terminal, as a person runs it: the guest's console
// has the terminal's size and TERM, and the new size when the window is
// resized (SIGWINCH in the guest), a line typed with Enter (CR) reaches
// the workload, Ctrl-C reaches it as SIGINT (status 130); ctrl-p ctrl-q
// detach and leave the VM running; the terminal is back in its own modes
// after each.
func TestGinitctlTerminal(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	tmp := t.TempDir()
	ctl := a.buildGinitctl(t, tmp)
	root := probeRoot(t, a, map[string]any{"Entrypoint": []string{"/app/probe", "tty"}})
	state := filepath.Join(tmp, "state")
	run := []string{ctl, "run", "--state", state, "--kernel", a.Kernel, "--initrd", a.Initrd}

	got := runInTerminal(t, append(run, "--rm", "-it", "dir:"+root), []keystroke{
		{when: "probe: type a line", resize: &unix.Winsize{Row: 50, Col: 160}},
		{when: "probe: resized rows=50 cols=160", keys: "hello there\r"},
		{when: "probe: waiting for Ctrl-C", keys: "\x03"},
	})
	var ee *exec.ExitError
	if !errors.As(got.err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("ginitctl run -it after Ctrl-C: %v; want status 130, the workload's death by SIGINT:\n%s", got.err, got.screen)
	}
	for _, want := range []string{
		"probe: tty rows=33 cols=101 err=errno 0 TERM=xterm",
		`probe: read "hello there\n" <nil>`,
		"entrypoint exited with status 130 (signal SIGINT)",
	} {
		if !strings.Contains(got.screen, want) {
			t.Errorf("terminal lacks %q:\n%s", want, got.screen)
		}
	}
	if !got.restored {
		t.Errorf("ginitctl run -it left the terminal in other modes")
	}

	got = runInTerminal(t, append(run, "--name", "typed", "-it", "dir:"+root), []keystroke{
		{when: "probe: type a line", keys: "abc\x10\x11"},
	})
	if got.err != nil || !strings.Contains(got.screen, "ginitctl: detached; typed runs on") || !got.restored {
		t.Errorf("ginitctl run -it, then ctrl-p ctrl-q: %v, terminal restored %v; want status 0 and a detached VM:\n%s", got.err, got.restored, got.screen)
	}
	out, err := exec.Command(ctl, "stop", "--state", state, "typed").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "typed: exited") {
		t.Errorf("ginitctl stop typed after the detach: %v, %q; want the VM running until then", err, out)
	}
}

// run -d --wait-ready returns only once the image's ExposedPorts accept
// connections, so the first request to the published port succeeds; ps
// and inspect show the guest's own status from the control channel; stop
// goes through the channel, delivers the image's StopSignal and prints
// the workload's status.
func TestGinitctlWaitReadyAndStop(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	tmp := t.TempDir()
	c := ctl{bin: a.buildGinitctl(t, tmp), state: filepath.Join(tmp, "state"), a: a}
	image := a.helloImage(t)
	port := strconv.Itoa(freePort(t))
	out, errOut, code := c.run(t, "run", "-d", "--wait-ready", "--name", "web", "-p", "127.0.0.1:"+port+":8080", image)
	if code != 0 || out != "web\n" {
		t.Fatalf("run -d --wait-ready = %d, %q, %q; want 0 and the name", code, out, errOut)
	}
	defer c.run(t, "rm", "-f", "web")
	// Once: ready means the server answers now, with no retry.
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatalf("GET right after run -d --wait-ready: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `greeting "hello-from-the-image"`) {
		t.Errorf("GET right after run -d --wait-ready = %s, %q", resp.Status, body)
	}

	if out, _, _ := c.run(t, "ps"); !regexp.MustCompile(`(?m)^web\s.*\srunning \(ready\)\s`).MatchString(out) {
		t.Errorf("ps of a ready VM:\n%s", out)
	}
	out, errOut, code = c.run(t, "inspect", "web")
	var inspected []struct {
		State struct {
			Phase string `json:"phase"`
			Guest *struct {
				Phase string `json:"phase"`
				Pid   int    `json:"pid"`
				Ready bool   `json:"ready"`
				Boot  []struct {
					Name string `json:"name"`
				} `json:"boot"`
			} `json:"guest"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &inspected); err != nil || code != 0 || len(inspected) != 1 {
		t.Fatalf("inspect web = %d, %v:\n%s%s", code, err, out, errOut)
	}
	if g := inspected[0].State.Guest; g == nil || g.Phase != "running" || g.Pid <= 0 || !g.Ready || len(g.Boot) == 0 {
		t.Errorf("inspect web: guest %+v; want running, ready, its pid and boot phases:\n%s", g, out)
	}
	if errOut != "" {
		t.Errorf("inspect web said %q; want nothing (the channel answers)", errOut)
	}

	if out, errOut, code := c.run(t, "stop", "web"); code != 0 || out != "web: exited (0)\n" {
		t.Errorf("stop web = %d, %q, %q; want the server's 0", code, out, errOut)
	}
	logs, _, _ := c.run(t, "logs", "web")
	for _, want := range []string{"control channel: stop requested", "sending SIGTERM to the workload", "hello-server: stopping"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}
