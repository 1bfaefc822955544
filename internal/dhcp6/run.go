package dhcp6

import (
	"errors"
	"os"
	"time"
)

// Conn carries the client's messages on one link.
type Conn interface {
	// Send sends b to all DHCPv6 servers on the link.
	Send(b []byte) error
	// Recv waits for the next message until deadline (zero: no deadline).
	// It returns os.ErrDeadlineExceeded when the deadline passes or the
	// driver has a control message to read.
	Recv(deadline time.Time) ([]byte, error)
}

// Control is an order for a running Driver.
type Control uint8

// The orders.
const (
	Restart Control = iota + 1 // the link came back
	Stop                       // release the address and return
)

// Driver runs a Client over a Conn.
type Driver struct {
	Client *Client
	Conn   Conn
	Now    func() time.Time
	// Ctl carries orders; whoever sends one also wakes Conn.Recv.
	Ctl <-chan Control
	// Handle applies or drops a lease's configuration, before the message
	// of the same step is sent.
	Handle    func(Result)
	SendError func(error)
}

// Run drives the client until Stop or until Conn.Recv fails.
func (d *Driver) Run() error {
	d.do(d.Client.Start(d.Now()))
	for {
		select {
		case ctl := <-d.Ctl:
			switch ctl {
			case Restart:
				d.do(d.Client.Start(d.Now()))
			case Stop:
				l, held := d.Client.Lease()
				if m := d.Client.Stop(); m != nil {
					d.send(m)
				}
				if held {
					d.Handle(Result{Drop: &l})
				}
				return nil
			}
			continue
		default:
		}
		b, err := d.Conn.Recv(d.Client.Wake())
		now := d.Now()
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			d.do(d.Client.Timer(now))
		case err != nil:
			return err
		default:
			if m, err := Parse(b); err == nil {
				d.do(d.Client.Receive(now, m))
			}
		}
	}
}

func (d *Driver) do(r Result) {
	if r.Drop != nil || r.Apply != nil {
		d.Handle(Result{Drop: r.Drop, Apply: r.Apply})
	}
	if r.Send != nil {
		d.send(r.Send)
	}
}

func (d *Driver) send(m *Message) {
	if err := d.Conn.Send(m.Bytes()); err != nil && d.SendError != nil {
		d.SendError(err)
	}
}
