package nsrun

import (
	"fmt"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Joins at once, as a control channel's sessions make them, each run to
// its end: directly, and through the stage (no_new_privs).
func TestJoinConcurrent(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := newRoot(t)
	p, err := Start(Config{Root: root, Exe: stageBin, Command: Command{Argv: []string{"/nsguest", "serve"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(unix.SIGKILL, 0)
	for _, staged := range []bool{false, true} {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range 25 {
					j, err := Join(p.Pid, Command{Argv: []string{"/nsguest", "info"}, NoNewPrivs: staged}, JoinOptions{Exe: stageBin})
					if err != nil {
						errs <- fmt.Errorf("worker %d, join %d: %w", i, n, err)
						return
					}
					if e := j.Wait(); e.Reason != Exited || e.Code != 0 {
						errs <- fmt.Errorf("worker %d: %v", i, e)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("staged %v: %v", staged, err)
		}
	}
}
