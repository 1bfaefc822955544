package dhcp4

import (
	"bytes"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// State is where the client is in RFC 2131's state diagram.
type State uint8

// The states.
const (
	Selecting  State = iota // DISCOVER sent, waiting for an OFFER (or a rapid ACK)
	Requesting              // REQUEST sent for an OFFER
	Rebooting               // REQUEST sent for the lease held before the link went down
	Bound
	Renewing  // past T1: REQUEST unicast to the server
	Rebinding // past T2: REQUEST broadcast to any server
	Stopped   // released, or never started
)

var stateNames = [...]string{"selecting", "requesting", "rebooting", "bound", "renewing", "rebinding", "stopped"}

func (s State) String() string { return stateNames[s] }

// Retransmission delays: quick at first, since at boot the first packets
// are often lost while the link comes up, then RFC 2131's doubling to 64 s.
var (
	selectDelays  = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 64 * time.Second}
	requestDelays = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
)

// minRetry is the least wait between renewal or rebinding attempts (RFC
// 2131 says 60 s; short leases would not renew in time).
const minRetry = 5 * time.Second

// Out is a message to send: broadcast, or unicast to To when valid.
type Out struct {
	Msg *dhcpv4.DHCPv4
	To  netip.Addr
}

// Result is what a step asks of the caller, in order: drop the
// configuration of Drop, apply Apply (a new lease, or a renewed one with the
// same address), send Send.
type Result struct {
	Drop  *Lease
	Apply *Lease
	Send  *Out
}

// Client is one link's DHCPv4 client. Set HW and XID before Start.
type Client struct {
	HW       net.HardwareAddr
	Hostname string        // sent in option 12 when not empty
	XID      func() uint32 // transaction ids

	state State
	xid   dhcpv4.TransactionID
	lease *Lease // held: bound, renewing, rebinding, rebooting
	offer *dhcpv4.DHCPv4
	sent  time.Time // first send of this exchange
	tries int
	wake  time.Time
	naks  int // NAKs in a row: after the first, discovery waits
}

// State returns the client's state.
func (c *Client) State() State { return c.state }

// Lease returns the lease held, if any.
func (c *Client) Lease() (Lease, bool) {
	if c.lease == nil {
		return Lease{}, false
	}
	return *c.lease, true
}

// Wake is when Timer must be called next; zero when nothing is pending.
func (c *Client) Wake() time.Time { return c.wake }

// Start begins at now: it asks again for the lease held if it is still
// valid (INIT-REBOOT, as after the link came back), else discovers.
func (c *Client) Start(now time.Time) Result {
	if c.lease != nil && (c.lease.Time == 0 || now.Before(c.lease.Expiry())) {
		c.newExchange(Rebooting, now)
		return Result{Send: c.send(now)}
	}
	var r Result
	if c.lease != nil {
		r.Drop = c.lease
		c.lease = nil
	}
	c.newExchange(Selecting, now)
	r.Send = c.send(now)
	return r
}

// Stop ends the client. When it holds a lease, it returns the RELEASE to
// send to the server; the caller drops the lease's configuration.
func (c *Client) Stop() *Out {
	defer func() { c.state, c.wake, c.lease = Stopped, time.Time{}, nil }()
	if c.lease == nil || c.state == Stopped || c.state == Rebooting || !c.lease.Server.IsValid() {
		return nil
	}
	c.xid = c.newXID()
	m := c.message(dhcpv4.MessageTypeRelease)
	m.ClientIPAddr = c.lease.Addr.Addr().AsSlice()
	m.Options[dhcpv4.OptionServerIdentifier.Code()] = c.lease.Server.AsSlice()
	delete(m.Options, dhcpv4.OptionParameterRequestList.Code())
	delete(m.Options, dhcpv4.OptionMaximumDHCPMessageSize.Code())
	return &Out{Msg: m, To: c.lease.Server}
}

func (c *Client) newXID() dhcpv4.TransactionID {
	var x dhcpv4.TransactionID
	v := c.XID()
	x[0], x[1], x[2], x[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return x
}

func (c *Client) newExchange(s State, now time.Time) {
	c.state, c.sent, c.tries = s, now, 0
	c.xid = c.newXID()
}

// Timer handles the time passing to now: retransmissions, T1, T2, expiry.
func (c *Client) Timer(now time.Time) Result {
	if c.wake.IsZero() || now.Before(c.wake) {
		return Result{}
	}
	switch c.state {
	case Selecting:
		return Result{Send: c.send(now)}
	case Requesting:
		if c.tries >= len(requestDelays) {
			c.newExchange(Selecting, now)
		}
		return Result{Send: c.send(now)}
	case Rebooting:
		if c.tries < 2 {
			return Result{Send: c.send(now)}
		}
		// No answer: keep the lease held until it ends (RFC 2131 3.2).
		return c.bound(now)
	case Bound:
		c.newExchange(Renewing, now)
		return c.Timer(now)
	case Renewing, Rebinding:
		exp := c.lease.Expiry()
		if c.lease.Time != 0 && !now.Before(exp) {
			r := Result{Drop: c.lease}
			c.lease = nil
			c.newExchange(Selecting, now)
			r.Send = c.send(now)
			return r
		}
		if c.state == Renewing && !now.Before(c.lease.Start.Add(c.lease.T2)) {
			c.state, c.tries = Rebinding, 0
		}
		return Result{Send: c.send(now)}
	}
	return Result{}
}

// bound schedules the renewal of the lease held.
func (c *Client) bound(now time.Time) Result {
	c.state, c.offer = Bound, nil
	if c.lease.Time == 0 {
		c.wake = time.Time{}
	} else {
		c.wake = c.lease.Start.Add(c.lease.T1)
	}
	if now.After(c.wake) && !c.wake.IsZero() {
		return c.Timer(now)
	}
	return Result{}
}

// send builds this state's message and schedules its retransmission.
func (c *Client) send(now time.Time) *Out {
	var m *dhcpv4.DHCPv4
	var to netip.Addr
	switch c.state {
	case Selecting:
		m = c.message(dhcpv4.MessageTypeDiscover)
		m.Options[dhcpv4.OptionRapidCommit.Code()] = []byte{}
		c.wake = now.Add(delay(selectDelays, c.tries))
	case Requesting:
		m = c.message(dhcpv4.MessageTypeRequest)
		m.Options[dhcpv4.OptionRequestedIPAddress.Code()] = c.offer.YourIPAddr.To4()
		m.Options[dhcpv4.OptionServerIdentifier.Code()] = c.offer.Options.Get(dhcpv4.OptionServerIdentifier)
		c.wake = now.Add(delay(requestDelays, c.tries))
	case Rebooting:
		m = c.message(dhcpv4.MessageTypeRequest)
		m.Options[dhcpv4.OptionRequestedIPAddress.Code()] = c.lease.Addr.Addr().AsSlice()
		c.wake = now.Add(delay(requestDelays, c.tries))
	case Renewing, Rebinding:
		m = c.message(dhcpv4.MessageTypeRequest)
		m.ClientIPAddr = c.lease.Addr.Addr().AsSlice()
		until := c.lease.Expiry()
		if c.state == Renewing {
			until = c.lease.Start.Add(c.lease.T2)
			to = c.lease.Server
		}
		wait := max(until.Sub(now)/2, minRetry)
		c.wake = now.Add(wait)
		if c.lease.Time != 0 && c.wake.After(until) {
			c.wake = until
		}
	default:
		return nil
	}
	secs := now.Sub(c.sent) / time.Second
	m.NumSeconds = uint16(min(secs, 0xffff))
	c.tries++
	return &Out{Msg: m, To: to}
}

func delay(d []time.Duration, try int) time.Duration {
	return d[min(try, len(d)-1)]
}

// requested are the options the client asks for.
var requested = dhcpv4.OptParameterRequestList(
	dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer, dhcpv4.OptionHostName,
	dhcpv4.OptionDomainName, dhcpv4.OptionInterfaceMTU, dhcpv4.OptionIPAddressLeaseTime,
	dhcpv4.OptionServerIdentifier, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue,
	dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionClasslessStaticRoute,
).Value.ToBytes()

func (c *Client) message(t dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	m := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootRequest,
		HWType:        iana.HWTypeEthernet,
		TransactionID: c.xid,
		ClientHWAddr:  c.HW,
		ClientIPAddr:  net.IPv4zero,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		Options: dhcpv4.Options{
			dhcpv4.OptionDHCPMessageType.Code():        {byte(t)},
			dhcpv4.OptionParameterRequestList.Code():   requested,
			dhcpv4.OptionMaximumDHCPMessageSize.Code(): {1500 >> 8, 1500 & 0xff},
		},
	}
	if c.Hostname != "" {
		m.Options[dhcpv4.OptionHostName.Code()] = []byte(c.Hostname)
	}
	return m
}

// Receive handles a message that arrived at now.
func (c *Client) Receive(now time.Time, m *dhcpv4.DHCPv4) Result {
	if m == nil || m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != c.xid ||
		len(m.ClientHWAddr) < len(c.HW) || !bytes.Equal(m.ClientHWAddr[:len(c.HW)], c.HW) {
		return Result{}
	}
	t := m.MessageType()
	switch c.state {
	case Selecting:
		switch {
		case t == dhcpv4.MessageTypeOffer && len(m.Options.Get(dhcpv4.OptionServerIdentifier)) == 4:
			c.offer = m
			c.state, c.tries = Requesting, 0
			return Result{Send: c.send(now)}
		case t == dhcpv4.MessageTypeAck && m.Options.Has(dhcpv4.OptionRapidCommit):
			return c.ack(now, m)
		}
	case Requesting:
		if sid := m.Options.Get(dhcpv4.OptionServerIdentifier); sid != nil && !bytes.Equal(sid, c.offer.Options.Get(dhcpv4.OptionServerIdentifier)) {
			return Result{}
		}
		fallthrough
	case Rebooting, Renewing, Rebinding:
		switch t {
		case dhcpv4.MessageTypeAck:
			return c.ack(now, m)
		case dhcpv4.MessageTypeNak:
			var r Result
			if c.lease != nil {
				r.Drop = c.lease
				c.lease = nil
			}
			c.newExchange(Selecting, now)
			if c.naks++; c.naks > 1 {
				// A server that refuses every request is not asked again
				// at once, or the two would loop.
				c.wake = now.Add(delay(selectDelays, c.naks-2))
				c.tries = 1
				return r
			}
			r.Send = c.send(now)
			return r
		}
	}
	return Result{}
}

func (c *Client) ack(now time.Time, m *dhcpv4.DHCPv4) Result {
	l, err := FromACK(m, c.sent)
	if err != nil {
		return Result{}
	}
	if !l.Server.IsValid() && c.lease != nil {
		l.Server = c.lease.Server
	}
	var r Result
	if c.lease != nil && c.lease.Addr != l.Addr {
		r.Drop = c.lease
	}
	c.lease = &l
	c.naks = 0
	r.Apply = &l
	if b := c.bound(now); b.Send != nil {
		r.Send = b.Send
	}
	return r
}
