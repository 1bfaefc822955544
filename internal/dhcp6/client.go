package dhcp6

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Lease is what a Reply gave: an address (stateful), or DNS alone
// (stateless, Addr invalid).
type Lease struct {
	Addr      netip.Addr
	Preferred time.Duration // 0: forever
	Valid     time.Duration // 0: forever
	T1, T2    time.Duration // 0: no renewal
	Server    []byte        // server DUID
	DNS       []netip.Addr
	Search    []string
	Start     time.Time
}

// Expiry is when the address ends; zero when never or when there is none.
func (l Lease) Expiry() time.Time {
	if l.Valid == 0 || !l.Addr.IsValid() {
		return time.Time{}
	}
	return l.Start.Add(l.Valid)
}

// Remaining returns the valid and preferred lifetimes left at now (0:
// forever).
func (l Lease) Remaining(now time.Time) (valid, preferred time.Duration) {
	left := func(d time.Duration) time.Duration {
		if d == 0 {
			return 0
		}
		return max(l.Start.Add(d).Sub(now), time.Second)
	}
	return left(l.Valid), left(l.Preferred)
}

// SameConfig says whether two leases configure the machine alike.
func (l Lease) SameConfig(o Lease) bool {
	return l.Addr == o.Addr && slices.Equal(l.DNS, o.DNS) && slices.Equal(l.Search, o.Search)
}

func (l Lease) String() string {
	s := "dns only"
	if l.Addr.IsValid() {
		s = l.Addr.String() + "/128"
		if l.Valid == 0 {
			s += " lease infinite"
		} else {
			s += fmt.Sprintf(" lease %v", l.Valid)
		}
	}
	if len(l.DNS) > 0 {
		s += fmt.Sprintf(" dns %v", l.DNS)
	}
	if len(l.Search) > 0 {
		s += fmt.Sprintf(" search %v", l.Search)
	}
	return s
}

func secs(b []byte) time.Duration {
	v := binary.BigEndian.Uint32(b)
	if v == 0xffffffff {
		return 0
	}
	return time.Duration(v) * time.Second
}

// leaseFrom reads a Reply or Advertise for the IA iaid. In stateful mode
// it fails unless the IA holds a usable address.
func leaseFrom(m *Message, iaid uint32, stateful bool, start time.Time) (Lease, error) {
	if st := status(m.Options); st != 0 {
		return Lease{}, fmt.Errorf("status %d", st)
	}
	l := Lease{Start: start, Server: Get(m.Options, OptServerID)}
	if l.Server == nil {
		return Lease{}, fmt.Errorf("no server id")
	}
	l.DNS = addrs16(Get(m.Options, OptDNSServers))
	l.Search = Names(Get(m.Options, OptDomainList))
	if !stateful {
		l.T1 = 24 * time.Hour
		if r := Get(m.Options, OptInfoRefreshTime); len(r) == 4 {
			l.T1 = max(secs(r), 10*time.Minute)
		}
		return l, nil
	}
	for _, o := range m.Options {
		if o.Code != OptIANA || len(o.Data) < 12 || binary.BigEndian.Uint32(o.Data) != iaid {
			continue
		}
		l.T1, l.T2 = secs(o.Data[4:]), secs(o.Data[8:])
		inner, err := parseOptions(o.Data[12:])
		if err != nil {
			return Lease{}, err
		}
		if st := status(inner); st != 0 {
			return Lease{}, fmt.Errorf("IA status %d", st)
		}
		for _, io := range inner {
			if io.Code != OptIAAddr || len(io.Data) < 24 {
				continue
			}
			a := netip.AddrFrom16([16]byte(io.Data[:16]))
			pref, valid := secs(io.Data[16:]), secs(io.Data[20:])
			if binary.BigEndian.Uint32(io.Data[20:]) == 0 || !a.IsGlobalUnicast() {
				continue // withdrawn, or not for us
			}
			l.Addr, l.Preferred, l.Valid = a, pref, valid
			break
		}
	}
	if !l.Addr.IsValid() {
		return Lease{}, fmt.Errorf("no address")
	}
	if l.Preferred != 0 && (l.T1 == 0 || l.T1 > l.Preferred) {
		l.T1 = l.Preferred / 2
	}
	if l.Preferred != 0 && (l.T2 == 0 || l.T2 < l.T1 || l.T2 > l.Preferred) {
		l.T2 = l.Preferred * 4 / 5
	}
	return l, nil
}

// State is where the client is.
type State uint8

// The states.
const (
	Soliciting State = iota
	Requesting
	Bound
	Renewing
	Rebinding
	Informing // stateless: Information-request sent
	Stopped
)

var (
	solDelays = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 64 * time.Second, 120 * time.Second}
	reqDelays = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
)

const minRetry = 5 * time.Second

// Result is what a step asks of the caller, in order: drop the
// configuration of Drop, apply Apply, send Send to all servers on the link.
type Result struct {
	Drop  *Lease
	Apply *Lease
	Send  *Message
}

// Client is one link's DHCPv6 client. Set HW and XID before Start.
type Client struct {
	HW net.HardwareAddr
	// Stateless asks for DNS alone (the O flag) instead of an address (M).
	Stateless bool
	XID       func() uint32

	state  State
	xid    [3]byte
	lease  *Lease
	advert *Message
	sent   time.Time
	tries  int
	wake   time.Time
}

// State returns the client's state.
func (c *Client) State() State { return c.state }

// Wake is when Timer must be called next; zero when nothing is pending.
func (c *Client) Wake() time.Time { return c.wake }

// Lease returns the lease held, if any.
func (c *Client) Lease() (Lease, bool) {
	if c.lease == nil {
		return Lease{}, false
	}
	return *c.lease, true
}

func (c *Client) iaid() uint32 {
	if len(c.HW) >= 4 {
		return binary.BigEndian.Uint32(c.HW[len(c.HW)-4:])
	}
	return 1
}

// DUID is the client's DUID-LL.
func (c *Client) DUID() []byte {
	return append([]byte{0, 3, 0, 1}, c.HW...)
}

func (c *Client) newExchange(s State, now time.Time) {
	c.state, c.sent, c.tries = s, now, 0
	v := c.XID()
	c.xid = [3]byte{byte(v >> 16), byte(v >> 8), byte(v)}
}

// Start begins at now: Rebind for the address held if it is still valid
// (as after the link came back), else Solicit, or Information-request.
func (c *Client) Start(now time.Time) Result {
	var r Result
	switch {
	case c.Stateless:
		c.newExchange(Informing, now)
	case c.lease != nil && (c.lease.Valid == 0 || now.Before(c.lease.Expiry())):
		c.newExchange(Rebinding, now)
	default:
		if c.lease != nil {
			r.Drop, c.lease = c.lease, nil
		}
		c.newExchange(Soliciting, now)
	}
	r.Send = c.send(now)
	return r
}

// Stop ends the client and returns the Release to send for the address
// held, if any.
func (c *Client) Stop() *Message {
	defer func() { c.state, c.wake, c.lease = Stopped, time.Time{}, nil }()
	if c.lease == nil || !c.lease.Addr.IsValid() || c.state == Stopped {
		return nil
	}
	v := c.XID()
	c.xid, c.sent = [3]byte{byte(v >> 16), byte(v >> 8), byte(v)}, time.Time{}
	m := c.message(Release, time.Time{})
	m.Options = append(m.Options, Option{OptServerID, c.lease.Server}, c.ia(true))
	return m
}

// Timer handles the time passing to now.
func (c *Client) Timer(now time.Time) Result {
	if c.wake.IsZero() || now.Before(c.wake) {
		return Result{}
	}
	switch c.state {
	case Soliciting, Informing:
		return Result{Send: c.send(now)}
	case Requesting:
		if c.tries >= len(reqDelays) {
			c.newExchange(Soliciting, now)
		}
		return Result{Send: c.send(now)}
	case Bound:
		if c.Stateless {
			c.newExchange(Informing, now)
		} else {
			c.newExchange(Renewing, now)
		}
		return c.Timer(now)
	case Renewing, Rebinding:
		if exp := c.lease.Expiry(); !exp.IsZero() && !now.Before(exp) {
			r := Result{Drop: c.lease}
			c.lease = nil
			c.newExchange(Soliciting, now)
			r.Send = c.send(now)
			return r
		}
		if c.state == Renewing && c.lease.T2 != 0 && !now.Before(c.lease.Start.Add(c.lease.T2)) {
			c.state, c.tries = Rebinding, 0
		}
		return Result{Send: c.send(now)}
	}
	return Result{}
}

func (c *Client) ia(withAddr bool) Option {
	d := binary.BigEndian.AppendUint32(nil, c.iaid())
	d = append(d, make([]byte, 8)...) // T1, T2: the server's choice
	if withAddr && c.lease != nil && c.lease.Addr.IsValid() {
		a := c.lease.Addr.As16()
		d = appendOptions(d, []Option{{OptIAAddr, append(a[:], make([]byte, 8)...)}})
	}
	return Option{OptIANA, d}
}

func (c *Client) message(t uint8, now time.Time) *Message {
	cs := now.Sub(c.sent) / (10 * time.Millisecond)
	el := binary.BigEndian.AppendUint16(nil, uint16(min(max(cs, 0), 0xffff)))
	oro := []byte{0, OptDNSServers, 0, OptDomainList}
	if t == InformationRequest {
		oro = append(oro, 0, OptInfoRefreshTime)
	}
	return &Message{Type: t, XID: c.xid, Options: []Option{
		{OptClientID, c.DUID()},
		{OptElapsedTime, el},
		{OptORO, oro},
	}}
}

// send builds this state's message and schedules its retransmission.
func (c *Client) send(now time.Time) *Message {
	var m *Message
	switch c.state {
	case Soliciting:
		m = c.message(Solicit, now)
		m.Options = append(m.Options, Option{OptRapidCommit, nil}, c.ia(false))
		c.wake = now.Add(solDelays[min(c.tries, len(solDelays)-1)])
	case Informing:
		m = c.message(InformationRequest, now)
		c.wake = now.Add(solDelays[min(c.tries, len(solDelays)-1)])
	case Requesting:
		m = c.message(Request, now)
		m.Options = append(m.Options, Option{OptServerID, Get(c.advert.Options, OptServerID)}, c.ia(false))
		// Ask for the address advertised.
		if l, err := leaseFrom(c.advert, c.iaid(), true, now); err == nil {
			a := l.Addr.As16()
			ia := binary.BigEndian.AppendUint32(nil, c.iaid())
			ia = append(ia, make([]byte, 8)...)
			m.Options[len(m.Options)-1].Data = appendOptions(ia, []Option{{OptIAAddr, append(a[:], make([]byte, 8)...)}})
		}
		c.wake = now.Add(reqDelays[min(c.tries, len(reqDelays)-1)])
	case Renewing, Rebinding:
		t, until := uint8(Rebind), c.lease.Expiry()
		if c.state == Renewing {
			t, until = Renew, c.lease.Start.Add(c.lease.T2)
		}
		m = c.message(t, now)
		if t == Renew {
			m.Options = append(m.Options, Option{OptServerID, c.lease.Server})
		}
		m.Options = append(m.Options, c.ia(true))
		if until.IsZero() {
			c.wake = now.Add(solDelays[min(c.tries, len(solDelays)-1)])
		} else {
			c.wake = now.Add(max(until.Sub(now)/2, minRetry))
			if c.wake.After(until) {
				c.wake = until
			}
		}
	default:
		return nil
	}
	c.tries++
	return m
}

// bound schedules the renewal of the lease held.
func (c *Client) bound(now time.Time) {
	c.state, c.advert = Bound, nil
	c.wake = time.Time{}
	if c.lease.T1 != 0 {
		c.wake = c.lease.Start.Add(c.lease.T1)
	}
}

// Receive handles a message that arrived at now.
func (c *Client) Receive(now time.Time, m *Message) Result {
	if m == nil || m.XID != c.xid || !bytes.Equal(Get(m.Options, OptClientID), c.DUID()) {
		return Result{}
	}
	switch {
	case c.state == Soliciting && m.Type == Advertise:
		if _, err := leaseFrom(m, c.iaid(), true, now); err != nil {
			return Result{}
		}
		c.advert = m
		c.newExchange(Requesting, now)
		return Result{Send: c.send(now)}
	case m.Type != Reply:
		return Result{}
	case c.state == Soliciting && Get(m.Options, OptRapidCommit) == nil:
		return Result{}
	case c.state == Soliciting, c.state == Requesting, c.state == Renewing, c.state == Rebinding, c.state == Informing:
	default:
		return Result{}
	}
	l, err := leaseFrom(m, c.iaid(), !c.Stateless, c.sent)
	if err != nil {
		if c.state == Requesting {
			// Refused: start over, after a pause.
			c.newExchange(Soliciting, now)
			c.wake, c.tries = now.Add(solDelays[0]), 1
		}
		return Result{}
	}
	var r Result
	if c.lease != nil && c.lease.Addr != l.Addr {
		r.Drop = c.lease
	}
	c.lease = &l
	r.Apply = &l
	c.bound(now)
	return r
}
