package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlclient"
	"github.com/ginit-dev/ginit/internal/vmrun"
)

// waitReady waits on the VM's control channel until its workload is
// ready, or exits, or a signal on sigs gives up (the VM runs on).
func waitReady(dir vmrun.VMDir, sigs <-chan os.Signal) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
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
	if _, err := c.WaitReady(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted before the workload was ready; the VM runs on")
		}
		return err
	}
	return nil
}
