package vmrun

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/ctlserver/ctltest"
)

// Once ginit answers on the supervisor's port, the supervisor serves the
// channel to more clients at once than the VM has serial ports, hears the
// workload's exit there, and removes its socket when QEMU has ended.
func TestServeChannel(t *testing.T) {
	dir := State(t.TempDir()).VM("vm")
	if err := os.MkdirAll(string(dir), 0o700); err != nil {
		t.Fatal(err)
	}
	servers := serveMachine(t, dir.SupervisorControl(), &ctltest.Machine{Phase: ctlproto.PhaseRunning})
	heard := serveChannel(dir, t.Logf)
	for i := 0; ; i++ {
		if _, err := os.Stat(dir.Channel()); err == nil {
			break
		}
		if i == 500 {
			t.Fatalf("%s never appeared", dir.Channel())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if fi, err := os.Stat(dir.Channel()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600", dir.Channel(), fi.Mode(), err)
	}
	const clients = 10 // over the four ports
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	started := make(chan struct{}, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dir.DialControl(ctx, false)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			var out bytes.Buffer
			// Each waits until all have started: all run at once.
			e, err := c.Exec(ctlproto.ExecSpec{Argv: []string{"sh", "-c", fmt.Sprintf("echo %d; read line", i)}, Stdin: true}, &gate{started: started}, &out, &out)
			if err != nil {
				errs <- err
				return
			}
			if code, err := e.Wait(); err != nil || code != 0 || out.String() != fmt.Sprintln(i) {
				errs <- fmt.Errorf("client %d: %d, %q, %v", i, code, out.String(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	code := 7
	(<-servers).Publish(ctlproto.EventMsg{Name: ctlproto.EventExited, Exit: &code})
	if exit := heard(); exit == nil || *exit != 7 {
		t.Errorf("heard %v; want the exited event's 7", exit)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(dir.Channel()); os.IsNotExist(err) {
			break
		}
		if i == 500 {
			t.Fatalf("%s is left after the end", dir.Channel())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gate is a stdin that gives one line once as many gates as started has
// room for are being read: the commands behind them end only when all run
// at once.
type gate struct {
	started chan struct{}
	given   bool
}

func (g *gate) Read(p []byte) (int, error) {
	if g.given {
		return 0, io.EOF
	}
	g.started <- struct{}{}
	for len(g.started) < cap(g.started) {
		time.Sleep(5 * time.Millisecond)
	}
	g.given = true
	return copy(p, "go\n"), nil
}
