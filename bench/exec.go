package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/ctlmux"
	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/qemu"
)

var (
	execOnly = flag.Bool("exec-only", false, "print only the control channel table (needs build/minimal.cpio and /bin/busybox)")
	execMiB  = flag.Int("exec-mib", 100, "MiB of stdout for the control channel's throughput row")
)

const execRuns = 30

// execTable measures the control channel on one VM: an exec's round trip
// (`true`) on an open connection and with its own connection, as
// `ginitctl exec` makes one, beside the same binary started by a shell
// inside the guest; and the channel's stdout throughput beside the same
// bytes written to /dev/null inside the guest.
func execTable(o options, work string) error {
	root := filepath.Join(work, "execroot")
	if err := goBuild(filepath.Join(root, "app/probe"), "./integration/testdata/probe"); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		return err
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("the exec table needs a static busybox (scripts/install-deps.sh): %w", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), bb, 0o755); err != nil {
		return err
	}
	for _, tool := range []string{"sh", "true", "head"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", tool)); err != nil {
			return err
		}
	}
	disk := filepath.Join(work, "exec.img")
	cmd := exec.Command("go", "run", "./cmds/oci2disk", "-q", "--entrypoint", "/app/probe stopwait /stopped", "dir:"+root, disk)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("oci2disk: %v\n%s", err, out)
	}
	sock := filepath.Join(work, "control.sock")
	vm := qemu.VM{Kernel: o.kernel, Initrd: filepath.Join(o.build, "minimal.cpio"), Disk: disk, NoNet: true,
		ControlSocket: sock, Timeout: 30 * time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := vm.Run(ctx); done <- err }()

	dial := func() (*ctlclient.Client, error) {
		dctx, dcancel := context.WithTimeout(ctx, 3*time.Minute)
		defer dcancel()
		for {
			c, err := ctlclient.Dial(dctx, sock)
			if err == nil {
				return c, c.WaitRunning(dctx)
			}
			select {
			case err := <-done:
				return nil, fmt.Errorf("the VM ended: %v", err)
			case <-dctx.Done():
				return nil, err
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	run := func(c *ctlclient.Client, out io.Writer, argv ...string) error {
		e, err := c.Exec(ctlproto.ExecSpec{Argv: argv, Env: []string{"PATH=/bin"}}, nil, out, os.Stderr)
		if err != nil {
			return err
		}
		code, err := e.Wait()
		if err == nil && code != 0 {
			err = fmt.Errorf("%q: status %d", argv, code)
		}
		return err
	}
	c, err := dial()
	if err != nil {
		return err
	}
	// The channel as a VM's supervisor shares it with ginitctl: a mux over
	// the supervisor's port, served on a unix socket.
	muxed, err := serveMux(ctx, qemu.SupervisorSocket(sock), filepath.Join(work, "channel.sock"))
	if err != nil {
		return err
	}
	defer muxed.Close()
	dialMux := func() (*ctlclient.Client, error) { return ctlclient.Dial(ctx, muxed.Addr().String()) }
	timed := func(n int, f func() error) ([]time.Duration, error) {
		var d []time.Duration
		for range n {
			start := time.Now()
			if err := f(); err != nil {
				return nil, err
			}
			d = append(d, time.Since(start))
		}
		return d, nil
	}
	// The first execs after the boot share the machine with the drivers
	// that load after the workload started: not measured.
	if _, err := timed(5, func() error { return run(c, io.Discard, "/bin/true") }); err != nil {
		return err
	}
	// A shell in the guest starting the same binary execRuns times, in one
	// exec: per start.
	loop := "i=0; while [ $i -lt " + strconv.Itoa(execRuns) + " ]; do /bin/true; i=$((i+1)); done"
	inGuest, err := timed(5, func() error { return run(c, io.Discard, "sh", "-c", loop) })
	if err != nil {
		return err
	}
	c.Close()
	// Side by side in each round, so that the machine's load weighs on
	// every row alike: a new connection's first exec on a port, then a
	// second exec on it; and a new connection's first exec through the
	// supervisor's mux (as ginitctl exec makes it).
	var withDial, onOpen, withMux []time.Duration
	firstExec := func(dial func() (*ctlclient.Client, error)) (*ctlclient.Client, time.Duration, error) {
		start := time.Now()
		c, err := dial()
		if err == nil {
			err = run(c, io.Discard, "/bin/true")
		}
		return c, time.Since(start), err
	}
	for range execRuns {
		c, d, err := firstExec(dial)
		if err != nil {
			return err
		}
		withDial = append(withDial, d)
		again, err := timed(1, func() error { return run(c, io.Discard, "/bin/true") })
		c.Close()
		if err != nil {
			return err
		}
		onOpen = append(onOpen, again[0])
		c, d, err = firstExec(dialMux)
		if err != nil {
			return err
		}
		c.Close()
		withMux = append(withMux, d)
	}
	if c, err = dial(); err != nil {
		return err
	}
	defer c.Close()
	size := strconv.Itoa(*execMiB << 20)
	var counted countWriter
	start := time.Now()
	if err := run(c, &counted, "head", "-c", size, "/dev/zero"); err != nil {
		return err
	}
	channel := time.Since(start)
	if counted.n != int64(*execMiB)<<20 {
		return fmt.Errorf("throughput: got %d bytes of %d", counted.n, *execMiB<<20)
	}
	start = time.Now()
	if err := run(c, io.Discard, "sh", "-c", "head -c "+size+" /dev/zero >/dev/null"); err != nil {
		return err
	}
	local := time.Since(start)
	mc, err := dialMux()
	if err != nil {
		return err
	}
	counted.n = 0
	start = time.Now()
	err = run(mc, &counted, "head", "-c", size, "/dev/zero")
	mc.Close()
	if err != nil {
		return err
	}
	throughMux := time.Since(start)
	if counted.n != int64(*execMiB)<<20 {
		return fmt.Errorf("throughput through the mux: got %d bytes of %d", counted.n, *execMiB<<20)
	}
	if _, err := c.Stop(ctx); err != nil {
		return err
	}
	if err := <-done; err != nil {
		return err
	}

	perStart := median(inGuest) / execRuns
	fmt.Printf("## Control channel under QEMU TCG (virtio-serial): medians of %d execs\n\n", execRuns)
	fmt.Println("| row | time | ratio |")
	fmt.Println("|---|---:|---:|")
	fmt.Printf("| a shell in the guest starts /bin/true (per start) | %.1f ms | 1.0 |\n", ms(perStart))
	fmt.Printf("| exec /bin/true on an open connection | %.1f ms | %.1f |\n", ms(median(onOpen)), ratio(median(onOpen), perStart))
	fmt.Printf("| exec /bin/true with its own connection and hello on a port | %.1f ms | %.1f |\n", ms(median(withDial)), ratio(median(withDial), perStart))
	fmt.Printf("| exec /bin/true with its own connection through the supervisor's mux, as ginitctl exec | %.1f ms | %.1f |\n", ms(median(withMux)), ratio(median(withMux), perStart))
	mibps := func(d time.Duration) float64 { return float64(*execMiB) / d.Seconds() }
	fmt.Printf("| %d MiB of stdout: written to /dev/null in the guest | %.1f MiB/s | 1.0 |\n", *execMiB, mibps(local))
	fmt.Printf("| %d MiB of stdout: through the channel to the host | %.1f MiB/s | %.2f |\n", *execMiB, mibps(channel), mibps(channel)/mibps(local))
	fmt.Printf("| %d MiB of stdout: through the supervisor's mux to the host | %.1f MiB/s | %.2f |\n", *execMiB, mibps(throughMux), mibps(throughMux)/mibps(local))
	fmt.Println()
	return nil
}

// serveMux serves a ctlmux over the port behind up on a unix socket at
// path, as a VM's supervisor does; closing the listener it returns ends it.
func serveMux(ctx context.Context, up, path string) (net.Listener, error) {
	mux, err := ctlmux.Dial(ctx, up, nil)
	if err != nil {
		return nil, err
	}
	l, err := mux.Listen(path)
	if err != nil {
		mux.Close()
		return nil, err
	}
	go func() {
		<-ctx.Done()
		mux.Close()
	}()
	return l, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }
