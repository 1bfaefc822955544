package vmrun

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLayout(t *testing.T) {
	s := State("/st")
	vm := s.VM("web")
	for _, tc := range []struct{ got, want string }{
		{vm.RunDoc(), "/st/vms/web/run.json"},
		{vm.Info(), "/st/vms/web/vm.json"},
		{vm.ConsoleLog(), "/st/vms/web/console.log"},
		{vm.ConsoleSock(), "/st/vms/web/console.sock"},
		{vm.QMP(), "/st/vms/web/qmp.sock"},
		{vm.Control(), "/st/vms/web/control.sock"},
		{vm.PID(), "/st/vms/web/qemu.pid"},
		{vm.Status(), "/st/vms/web/status.json"},
		{vm.Disk(), "/st/vms/web/disk.qcow2"},
		{vm.Name(), "web"},
		{s.Image("sha256-ab").Disk(), "/st/images/sha256-ab/disk.img"},
		{s.Image("sha256-ab").Info(), "/st/images/sha256-ab/image.json"},
		{s.Image("sha256-ab").Key(), "sha256-ab"},
		{s.Volumes(), "/st/volumes"},
	} {
		if tc.got != tc.want {
			t.Errorf("path = %q; want %q", tc.got, tc.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"web-1.a_b", true}, {"0x", true}, {GenerateName(), true},
		{"", false}, {"-x", false}, {".x", false}, {"a/b", false}, {"..", false}, {"a b", false},
		{string(make([]byte, 65)), false},
	} {
		if err := CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v; want ok %v", tc.name, err, tc.ok)
		}
	}
	if n := GenerateName(); !regexp.MustCompile(`^[a-z]+_[a-z]+$`).MatchString(n) {
		t.Errorf("GenerateName() = %q; want adjective_noun", n)
	}
}

// reserve claims a name by making its directory: a second claim fails,
// generated names never collide.
func TestReserve(t *testing.T) {
	s := State(t.TempDir())
	if _, err := s.reserve("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.reserve("web"); !errors.Is(err, ErrNameTaken) {
		t.Errorf("reserve(web) again = %v; want ErrNameTaken", err)
	}
	seen := map[string]bool{}
	for range 50 {
		d, err := s.reserve("")
		if err != nil || seen[d.Name()] {
			t.Fatalf("reserve() = %q, %v; want a new name", d, err)
		}
		seen[d.Name()] = true
	}
	if fi, err := os.Stat(string(s.VM("web"))); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("VM directory: %v, %v; want mode 0700", fi.Mode(), err)
	}
}

func TestWorkloadStatus(t *testing.T) {
	line := func(n int) string {
		return "x\nginit: entrypoint exited with status " + strconv.Itoa(n) + "\nreboot: Power down\n"
	}
	for _, tc := range []struct {
		name    string
		heard   int // the channel's exited event; -1: none
		console string
		qemu    int
		killed  bool
		want    int // -1: none
		from    string
	}{
		{"channel", 300, line(44), 2*(44&0x7f) + 1, false, 300, FromChannel},
		{"channel beats kill", 0, "booting", -1, true, 0, FromChannel},
		{"console", -1, line(255), 0, false, 255, FromConsole},
		{"console beats debug-exit's 7 bits", -1, line(300), 2*(300&0x7f) + 1, false, 300, FromConsole},
		{"last line wins", -1, line(1) + line(3), 7, false, 3, FromConsole},
		{"console beats kill", -1, line(0), -1, true, 0, FromConsole},
		{"killed", -1, "booting", -1, true, ExitKilled, FromKill},
		{"debug-exit", -1, "booting", 7, false, 3, FromDebugExit},
		{"poweroff, no line", -1, "booting", 0, false, -1, ""},
		{"QEMU killed", -1, "booting", -1, false, -1, ""},
		{"debug-exit 125: a failed boot", -1, "ginit: boot failed: no root", 251, false, 125, FromDebugExit},
		// QEMU's exit 1 is isa-debug-exit's 0 and QEMU's own failures:
		// without ginit's line it is no status, whatever the guest printed.
		{"QEMU exit 1 after the guest printed", -1, "booting\nhello\n", 1, false, -1, ""},
		{"QEMU failed before the guest printed", -1, "", 1, false, -1, ""},
		{"QEMU exit 1 with ginit's line", -1, "hello\n" + line(0), 1, false, 0, FromConsole},
	} {
		var heard *int
		if tc.heard >= 0 {
			heard = &tc.heard
		}
		st, from := workloadStatus(heard, tc.console, tc.qemu, tc.killed)
		got := -1
		if st != nil {
			got = *st
		}
		if got != tc.want || from != tc.from {
			t.Errorf("%s: workloadStatus = %d, %q; want %d, %q", tc.name, got, from, tc.want, tc.from)
		}
	}
}

// Live tells a VM's phase from its files and its QEMU's process.
func TestLive(t *testing.T) {
	s := State(t.TempDir())
	mk := func(name string) VMDir {
		d, err := s.reserve(name)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	three := 3
	exited := mk("exited")
	if err := writeJSON(exited.Status(), Status{Exit: &three, From: FromConsole}, 0o600); err != nil {
		t.Fatal(err)
	}
	dead := mk("dead")
	if err := writeJSON(dead.Status(), Status{QEMU: "signal: killed"}, 0o600); err != nil {
		t.Fatal(err)
	}
	created := mk("created")
	// A process whose working directory is the VM's stands for its QEMU.
	running := mk("running")
	proc := exec.Command("sleep", "60")
	proc.Dir = string(running)
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { proc.Process.Kill(); proc.Wait() }()
	writePID := func(d VMDir, pid int) {
		if err := os.WriteFile(d.PID(), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePID(running, proc.Process.Pid)
	// QEMU gone with no status: the pid is this test's, which runs
	// elsewhere.
	vanished := mk("vanished")
	writePID(vanished, os.Getpid())
	// The same, with ginit's exit line on the console: the supervisor
	// died before it wrote the status.
	orphaned := mk("orphaned")
	writePID(orphaned, os.Getpid())
	if err := os.WriteFile(orphaned.ConsoleLog(), []byte("ginit: entrypoint exited with status 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  VMDir
		want string
		over bool
	}{
		{exited, "exited (3)", true}, {dead, "dead", true}, {created, "created", false},
		{running, "running", false}, {vanished, "dead", true}, {orphaned, "exited (4)", true},
	} {
		l, err := tc.dir.Live()
		if err != nil || l.String() != tc.want || l.Over() != tc.over {
			t.Errorf("%s: Live = %v (over %v), %v; want %s (over %v)", tc.dir.Name(), l, l.Over(), err, tc.want, tc.over)
		}
	}
	if l, _ := running.Live(); l.PID != proc.Process.Pid || time.Since(l.Started) > time.Hour {
		t.Errorf("running: Live = %+v; want its pid and start", l)
	}
	if _, err := s.VM("none").Live(); err == nil {
		t.Errorf("Live of no VM: no error")
	}
	// kill: SIGKILL to the VM's QEMU, marked so the supervisor says 137.
	if err := running.Kill(); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	if _, err := os.Stat(running.Killed()); err != nil {
		t.Errorf("kill left no mark: %v", err)
	}
	if err := exited.Kill(); err == nil {
		t.Errorf("kill of an exited VM: no error")
	}
	if err := created.Remove(false); err != nil {
		t.Errorf("rm of a created VM: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(s.VMs(), "*")); len(left) != 5 {
		t.Errorf("VMs after rm = %v; want 5", left)
	}
}

// Follow shows what is written while it follows, and what is left once
// told to stop.
func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("boot\n"); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pr, pw := io.Pipe()
	until := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- Follow(r, pw, until); pw.Close() }()
	lines := bufio.NewScanner(pr)
	for _, want := range []string{"boot", "workload", "last"} {
		if want != "boot" {
			if _, err := w.WriteString(want + "\n"); err != nil {
				t.Fatal(err)
			}
		}
		if want == "last" {
			close(until)
		}
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("Follow showed %q, %v; want %q", lines.Text(), lines.Err(), want)
		}
	}
	if lines.Scan() {
		t.Errorf("Follow showed %q after the end", lines.Text())
	}
	if err := <-done; err != nil {
		t.Errorf("Follow = %v", err)
	}
}

// A supervisor given a VM it cannot boot says why on its report, and
// never indexes an empty QEMU command line.
func TestSuperviseBadInfo(t *testing.T) {
	s := State(t.TempDir())
	for name, info := range map[string]string{"empty": `{"name":"empty"}`, "garbled": `{`, "none": ""} {
		dir, err := s.reserve(name)
		if err != nil {
			t.Fatal(err)
		}
		if info != "" {
			if err := os.WriteFile(dir.Info(), []byte(info), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var report strings.Builder
		err = Supervise(dir, &report)
		if err == nil || !strings.HasPrefix(report.String(), "failed: ") || !strings.Contains(report.String(), InfoFile) {
			t.Errorf("%s: Supervise = %v, report %q; want a failure naming %s", name, err, report.String(), InfoFile)
		}
	}
}
