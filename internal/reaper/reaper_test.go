package reaper

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// zombies counts this process's children that have exited and not been reaped.
func zombies(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == me {
			n++
		}
	}
	return n
}

// As a subreaper the test process stands in for PID 1: orphans are
// reparented to it. A supervised child's status still reaches its waiter
// while 1000 orphans are reaped around it, and none is left a zombie.
func TestOrphansAndSupervisedStatus(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		testenv.Missing(t, "cannot become a subreaper: %v", err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	r := New()
	sh := "/bin/sh"
	// The shell starts 1000 children that outlive it, then exits 3. The
	// children wait for the end of a pipe that the test closes once the
	// shell is gone: with a timed sleep, a loaded machine let early
	// children end while the shell was still starting the rest, and the
	// shell reaped those itself.
	release, hold, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer release.Close()
	defer hold.Close()
	script := `i=0; while [ $i -lt 1000 ]; do (read x <&3) & i=$((i+1)); done; exit 3`
	_, done, err := r.Start(sh, []string{"sh", "-c", script}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2, release.Fd()}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ws := <-done:
		if got := ExitCode(ws); got != 3 {
			t.Errorf("supervised exit code = %d; want 3", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no exit status for the supervised child")
	}
	hold.Close() // every child reads EOF and exits, as an orphan
	deadline := time.Now().Add(30 * time.Second)
	for r.Orphans() < 1000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := r.Orphans(); got < 1000 {
		t.Errorf("reaped %d orphans; want 1000", got)
	}
	if z := zombies(t); z != 0 {
		t.Errorf("%d zombies left; want 0", z)
	}
}

func TestExitCode(t *testing.T) {
	// WaitStatus encodings: exit code in bits 8-15, signal in bits 0-6.
	if got := ExitCode(unix.WaitStatus(3 << 8)); got != 3 {
		t.Errorf("ExitCode(exited 3) = %d; want 3", got)
	}
	if got := ExitCode(unix.WaitStatus(unix.SIGSEGV)); got != 139 {
		t.Errorf("ExitCode(SIGSEGV) = %d; want 139", got)
	}
}
