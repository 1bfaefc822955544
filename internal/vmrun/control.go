package vmrun

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/qemu"
)

// pollEvery is how often a waiting command looks at a VM's state again.
const pollEvery = 100 * time.Millisecond

// endWait is how long a VM's supervisor has, after QEMU ended, to write
// the status.
const endWait = 10 * time.Second

// PowerButton presses the VM's power button (QMP system_powerdown): ginit
// sends the workload its StopSignal, SIGKILL after its stop timeout, and
// powers off.
func (dir VMDir) PowerButton() error { return qemu.QMP(dir.QMP(), "system_powerdown") }

// Kill ends the VM's QEMU at once, with SIGKILL; its status is 137, as
// docker kill's, unless the workload had already ended.
func (dir VMDir) Kill() error {
	l, err := dir.Live()
	if err != nil {
		return err
	}
	if l.Phase != Running {
		return fmt.Errorf("VM %q is not running (%s)", dir.Name(), l)
	}
	if err := os.WriteFile(dir.Killed(), nil, 0o600); err != nil {
		return fmt.Errorf("kill %s: %w", dir.Name(), err)
	}
	if err := syscall.Kill(l.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: QEMU (pid %d): %w", dir.Name(), l.PID, err)
	}
	return nil
}

// Stop stops the VM as its power button does, through its ginit's control
// channel (which reports the workload's status as it exits), or with the
// power button itself (QMP system_powerdown) when the channel does not
// answer; it kills QEMU when the VM is still up after grace, and returns
// once the VM's status is known. removed says the VM removed itself
// (--rm) as it ended; l then has the status the channel reported.
func (dir VMDir) Stop(grace time.Duration) (l Live, removed bool, err error) {
	l, err = dir.Live()
	if err != nil || l.Phase != Running {
		return l, false, err
	}
	deadline := time.Now().Add(grace)
	accepted, exit := dir.stopByChannel(deadline)
	if !accepted {
		// A failed press (the monitor gone as QEMU ended) leaves the kill.
		_ = dir.PowerButton()
	}
	for l.Phase == Running && time.Now().Before(deadline) {
		if l, err = dir.Live(); err != nil {
			return Live{Phase: Exited, Exit: exit}, true, nil
		}
		if l.Phase == Running {
			time.Sleep(pollEvery)
		}
	}
	if l.Phase == Running {
		if err := dir.Kill(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return l, false, err
		}
	}
	l, removed, err = dir.awaitEnd()
	if removed {
		l = Live{Phase: Exited, Exit: exit}
	}
	return l, removed, err
}

// awaitEnd waits for the VM's supervisor to write its status (or remove
// the VM, for --rm); a supervisor that died writes none, and the VM is
// then dead.
func (dir VMDir) awaitEnd() (l Live, removed bool, err error) {
	deadline := time.Now().Add(endWait)
	for {
		_, serr := os.Stat(dir.Status())
		l, err = dir.Live()
		switch {
		case err != nil:
			return l, true, nil
		case serr == nil || (l.Over() && time.Now().After(deadline)):
			return l, false, nil
		case time.Now().After(deadline):
			return l, false, fmt.Errorf("VM %q: still %s", dir.Name(), l)
		}
		time.Sleep(pollEvery)
	}
}

// Ended closes once the VM has ended or is gone.
func (dir VMDir) Ended() <-chan struct{} {
	c := make(chan struct{})
	go func() {
		defer close(c)
		for {
			l, err := dir.Live()
			if err != nil || l.Over() {
				return
			}
			time.Sleep(pollEvery)
		}
	}()
	return c
}

// Remove removes the VM's directory; a running VM only with force, which
// kills it first.
func (dir VMDir) Remove(force bool) error {
	l, err := dir.Live()
	if err != nil {
		return err
	}
	if l.Phase == Running {
		if !force {
			return fmt.Errorf("VM %q is running: stop it first, or rm -f", dir.Name())
		}
		if err := dir.Kill(); err != nil {
			return err
		}
		if _, _, err := dir.awaitEnd(); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(string(dir)); err != nil {
		return fmt.Errorf("rm %s: %w", dir.Name(), err)
	}
	return nil
}

// OpenConsole opens the VM's console log, to read it while it grows (and
// after the directory is gone).
func (dir VMDir) OpenConsole() (*os.File, error) {
	f, err := os.Open(dir.ConsoleLog())
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(string(dir)); serr != nil {
			return nil, fmt.Errorf("no VM %q", dir.Name())
		}
	}
	return f, err
}

// Follow copies console to w; with until not nil it goes on as the log
// grows, until until closes, and then copies what is left. It wakes as
// QEMU writes (inotify), so the output shows as soon as on QEMU's own
// standard output.
func Follow(console *os.File, w io.Writer, until <-chan struct{}) error {
	if until == nil {
		_, err := io.Copy(w, console)
		return err
	}
	grown, stop := watchWrites(console.Name())
	defer stop()
	for {
		if _, err := io.Copy(w, console); err != nil {
			return err
		}
		select {
		case <-until:
			_, err := io.Copy(w, console)
			return err
		case <-grown:
		case <-time.After(pollEvery): // a write the watch missed
		}
	}
}

// watchWrites signals on grown when path is written. stop ends the watch.
func watchWrites(path string) (grown <-chan struct{}, stop func()) {
	c := make(chan struct{}, 1)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return c, func() {}
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return c, func() {}
	}
	// Non-blocking, so it is in Go's poller and Close ends a Read.
	f := os.NewFile(uintptr(fd), "inotify")
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}()
	return c, func() { f.Close() }
}

// VMs lists the VMs, newest first.
func (s State) List() ([]VMDir, error) {
	ents, err := os.ReadDir(s.VMs())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var dirs []VMDir
	created := map[VMDir]time.Time{}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		d := s.VM(e.Name())
		dirs = append(dirs, d)
		if info, err := d.ReadInfo(); err == nil {
			created[d] = info.Created
		}
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		if !created[dirs[i]].Equal(created[dirs[j]]) {
			return created[dirs[i]].After(created[dirs[j]])
		}
		return dirs[i] < dirs[j]
	})
	return dirs, nil
}

// Pruned is what Prune removed.
type Pruned struct {
	VMs    []string
	Images []ImageInfo
	Freed  int64 // bytes of disk
}

// Prune removes the VMs that have ended and then the cached bases that
// no VM left uses.
func (s State) Prune() (Pruned, error) {
	var p Pruned
	if _, err := os.Stat(string(s)); errors.Is(err, fs.ErrNotExist) {
		return p, nil // nothing to prune, and nothing to make
	}
	// No run is between taking a base and naming it in its vm.json.
	unlock, err := s.lockImages(unix.LOCK_EX)
	if err != nil {
		return p, err
	}
	defer unlock()
	dirs, err := s.List()
	if err != nil {
		return p, err
	}
	used := map[string]bool{}
	for _, d := range dirs {
		l, err := d.Live()
		if err != nil {
			continue // removed meanwhile
		}
		if !l.Over() {
			if info, err := d.ReadInfo(); err == nil {
				used[info.ImageKey] = true
			}
			continue
		}
		size := usage(string(d))
		if err := os.RemoveAll(string(d)); err != nil {
			return p, fmt.Errorf("prune %s: %w", d.Name(), err)
		}
		p.VMs = append(p.VMs, d.Name())
		p.Freed += size
	}
	ents, err := os.ReadDir(s.Images())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	for _, e := range ents {
		key := e.Name()
		// .new-*: a conversion that died; none runs under this lock.
		if !e.IsDir() || used[key] || (strings.HasPrefix(key, ".") && !strings.HasPrefix(key, ".new-")) {
			continue
		}
		d := s.Image(key)
		var info ImageInfo
		if err := readJSON(d.Info(), &info); err != nil {
			info = ImageInfo{Key: key}
		}
		size := usage(string(d))
		if err := os.RemoveAll(string(d)); err != nil {
			return p, fmt.Errorf("prune image %s: %w", key, err)
		}
		if !strings.HasPrefix(key, ".") {
			p.Images = append(p.Images, info)
		}
		p.Freed += size
	}
	return p, nil
}

// usage is the disk space under path: allocated blocks, as du counts
// them, since disks are sparse.
func usage(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
