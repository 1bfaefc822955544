package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/vmrun"
)

// startWait is how long run -d waits for the workload to start before it
// returns anyway: a boot under TCG on a loaded machine takes a minute, and
// an initramfs whose ginit has no control channel never answers.
const startWait = 3 * time.Minute

// errInterrupted is a wait that a signal gave up; the VM runs on.
var errInterrupted = errors.New("interrupted; the VM runs on")

// waitStarted waits on the VM's control channel until its workload has
// started, as docker run -d returns once the container has. A workload
// that has ended already started; a VM whose channel does not answer
// within startWait is said so on stderr, and runs on.
func waitStarted(dir vmrun.VMDir, sigs <-chan os.Signal, stderr io.Writer) error {
	err := waitGuest(dir, sigs, startWait, func(ctx context.Context, c *ctlclient.Client) error {
		_, err := c.WaitStarted(ctx)
		return err
	})
	switch {
	case err == nil || errors.Is(err, errInterrupted):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(stderr, "ginitctl: VM %s: its ginit did not say on the control channel that the workload started; it runs on\n", dir.Name())
		return nil
	}
	// The channel closed as the VM ended: a workload that exited at once
	// has a status (or, with --rm, took its directory with it).
	if l, lerr := dir.Live(); lerr != nil || l.Phase == vmrun.Exited {
		return nil
	}
	return fmt.Errorf("the VM ended before its workload started (ginitctl logs %s): %w", dir.Name(), err)
}

// waitReady waits on the VM's control channel until its workload is
// ready, or exits, or a signal on sigs gives up (the VM runs on).
func waitReady(dir vmrun.VMDir, sigs <-chan os.Signal) error {
	return waitGuest(dir, sigs, 0, func(ctx context.Context, c *ctlclient.Client) error {
		_, err := c.WaitReady(ctx)
		return err
	})
}

// waitGuest connects to the VM's control channel and waits on it with
// wait, for at most limit (0: no limit), until a signal on sigs gives up
// (errInterrupted) or the VM ends.
func waitGuest(dir vmrun.VMDir, sigs <-chan os.Signal, limit time.Duration, wait func(context.Context, *ctlclient.Client) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	if limit > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), limit)
	}
	defer cancel()
	interrupted := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			close(interrupted)
			cancel()
		case <-ctx.Done():
		}
	}()
	err := dialAndWait(ctx, dir, wait)
	select {
	case <-interrupted:
		return errInterrupted
	default:
		return err
	}
}

func dialAndWait(ctx context.Context, dir vmrun.VMDir, wait func(context.Context, *ctlclient.Client) error) error {
	// QEMU makes the socket as it starts.
	var c *ctlclient.Client
	var err error
	for range 100 {
		if c, err = dir.DialControl(ctx, true); err == nil || errors.Is(err, ctlclient.ErrNoAnswer) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	return wait(ctx, c)
}
