package vmrun

import (
	"context"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlproto"
)

// GuestWait is how long ps and inspect wait for a running VM's ginit to
// answer on its control channel before they show what QEMU and the
// console say: an image without the channel never answers.
const GuestWait = 2 * time.Second

// GuestStatus asks the VM's ginit for its status on a control port no
// other client holds, waiting at most wait.
func (dir VMDir) GuestStatus(wait time.Duration) (ctlproto.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := dir.DialControl(ctx, false)
	if err != nil {
		return ctlproto.Status{}, err
	}
	defer c.Close()
	return c.Status(ctx)
}

// LiveGuest is Live with, for a running VM, the guest's own status from
// its control channel (Live.Guest); guestErr says why there is none for a
// running VM whose channel did not answer within wait.
func (dir VMDir) LiveGuest(wait time.Duration) (l Live, guestErr, err error) {
	l, err = dir.Live()
	if err != nil || l.Phase != Running {
		return l, nil, err
	}
	st, guestErr := dir.GuestStatus(wait)
	if guestErr == nil {
		l.Guest = &st
	}
	return l, guestErr, nil
}

// stopWait is how long a stop waits for the guest's ginit to answer on the
// control channel before it presses the power button instead.
const stopWait = 5 * time.Second

// RequestStop asks the VM to stop as its power button does, and returns
// without waiting for it: through ginit's control channel, which takes the
// request as soon as the workload runs, or QEMU's power button (QMP
// system_powerdown) when the channel does not answer, which ginit hears
// only once its driver has loaded.
func (dir VMDir) RequestStop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopWait)
	defer cancel()
	if c, err := dir.DialControl(ctx, true); err == nil {
		_, err = c.Stop(ctx)
		c.Close()
		if err == nil {
			return nil
		}
	}
	return dir.PowerButton()
}

// stopByChannel stops the VM through its ginit's control channel (the
// power button's path) and waits until deadline for the workload's
// exited event. accepted says ginit took the request; exit is the
// workload's status, when the event came.
func (dir VMDir) stopByChannel(deadline time.Time) (accepted bool, exit *int) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	hello, helloCancel := context.WithTimeout(ctx, stopWait)
	c, err := dir.DialControl(hello, true)
	helloCancel()
	if err != nil {
		return false, nil
	}
	defer c.Close()
	st, err := c.StopWait(ctx)
	return st.Phase == ctlproto.PhaseStopping || st.Phase == ctlproto.PhaseExited, st.Exit
}
