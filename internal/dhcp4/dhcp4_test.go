package dhcp4

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

var (
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hw     = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	srvIP  = netip.MustParseAddr("192.0.2.1")
	myAddr = netip.MustParsePrefix("192.0.2.50/24")
)

// server is a scripted DHCP server at the packet level.
type server struct {
	lease  uint32 // seconds
	rapid  bool   // answers a DISCOVER with rapid commit by an ACK
	silent bool   // answers nothing
	nak    bool   // answers every REQUEST with a NAK
	extra  dhcpv4.Options
	got    []*dhcpv4.DHCPv4
}

func (s *server) reply(m *dhcpv4.DHCPv4) []*dhcpv4.DHCPv4 {
	s.got = append(s.got, m)
	if s.silent {
		return nil
	}
	mk := func(t dhcpv4.MessageType) *dhcpv4.DHCPv4 {
		lt := make([]byte, 4)
		binary.BigEndian.PutUint32(lt, s.lease)
		r := &dhcpv4.DHCPv4{
			OpCode: dhcpv4.OpcodeBootReply, HWType: iana.HWTypeEthernet, TransactionID: m.TransactionID,
			ClientHWAddr: m.ClientHWAddr, ClientIPAddr: net.IPv4zero, YourIPAddr: myAddr.Addr().AsSlice(),
			ServerIPAddr: srvIP.AsSlice(), GatewayIPAddr: net.IPv4zero,
			Options: dhcpv4.Options{
				dhcpv4.OptionDHCPMessageType.Code():    {byte(t)},
				dhcpv4.OptionServerIdentifier.Code():   srvIP.AsSlice(),
				dhcpv4.OptionSubnetMask.Code():         {255, 255, 255, 0},
				dhcpv4.OptionIPAddressLeaseTime.Code(): lt,
			},
		}
		for k, v := range s.extra {
			r.Options[k] = v
		}
		return r
	}
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		if s.rapid && m.Options.Has(dhcpv4.OptionRapidCommit) {
			a := mk(dhcpv4.MessageTypeAck)
			a.Options[dhcpv4.OptionRapidCommit.Code()] = []byte{}
			return []*dhcpv4.DHCPv4{a}
		}
		return []*dhcpv4.DHCPv4{mk(dhcpv4.MessageTypeOffer)}
	case dhcpv4.MessageTypeRequest:
		if s.nak {
			n := mk(dhcpv4.MessageTypeNak)
			n.YourIPAddr = net.IPv4zero
			return []*dhcpv4.DHCPv4{n}
		}
		return []*dhcpv4.DHCPv4{mk(dhcpv4.MessageTypeAck)}
	}
	return nil
}

type sent struct {
	at time.Duration // since t0
	m  *dhcpv4.DHCPv4
	to netip.Addr
}

var errEnd = errors.New("end of simulation")

// sim is the clock and the connection: Recv hands out the server's replies,
// or moves the clock to the deadline.
type sim struct {
	t     *testing.T
	now   time.Time
	end   time.Time
	srv   *server
	inbox [][]byte
	sent  []sent
	ctl   chan Control
	at    map[time.Duration]func() // things that happen at a time
}

func newSim(t *testing.T, srv *server, end time.Duration) *sim {
	return &sim{t: t, now: t0, end: t0.Add(end), srv: srv, ctl: make(chan Control, 1), at: map[time.Duration]func(){}}
}

func (s *sim) Send(b []byte, to netip.Addr) error {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		s.t.Fatalf("client sent a message that does not parse: %v", err)
	}
	s.sent = append(s.sent, sent{s.now.Sub(t0), m, to})
	for _, r := range s.srv.reply(m) {
		s.inbox = append(s.inbox, r.ToBytes())
	}
	return nil
}

func (s *sim) Recv(deadline time.Time) ([]byte, error) {
	if len(s.inbox) > 0 {
		b := s.inbox[0]
		s.inbox = s.inbox[1:]
		return b, nil
	}
	// The next scripted happening comes first if it is due before the
	// deadline.
	var next time.Duration = -1
	for d := range s.at {
		if next < 0 || d < next {
			next = d
		}
	}
	if next >= 0 && (deadline.IsZero() || !t0.Add(next).After(deadline)) {
		s.now = t0.Add(next)
		f := s.at[next]
		delete(s.at, next)
		f()
		return nil, os.ErrDeadlineExceeded
	}
	if deadline.IsZero() || deadline.After(s.end) {
		s.now = s.end
		return nil, errEnd
	}
	if deadline.After(s.now) {
		s.now = deadline
	}
	return nil, os.ErrDeadlineExceeded
}

// run drives a fresh client in the simulation and returns what it applied
// and dropped, in order.
func (s *sim) run(c *Client) (events []string, leases []Lease) {
	d := &Driver{
		Client: c, Conn: s, Now: func() time.Time { return s.now }, Ctl: s.ctl,
		Handle: func(r Result) {
			if r.Drop != nil {
				events = append(events, "drop "+r.Drop.Addr.String()+" at "+s.now.Sub(t0).String())
			}
			if r.Apply != nil {
				events = append(events, "apply "+r.Apply.Addr.String()+" at "+s.now.Sub(t0).String())
				leases = append(leases, *r.Apply)
			}
		},
	}
	if err := d.Run(); err != nil && err != errEnd {
		s.t.Fatalf("Run = %v", err)
	}
	return events, leases
}

func newClient() *Client {
	x := uint32(0x1000)
	return &Client{HW: hw, Hostname: "vm1", XID: func() uint32 { x++; return x }}
}

func (s *sim) kinds() []string {
	var k []string
	for _, p := range s.sent {
		w := p.m.MessageType().String() + "@" + p.at.String()
		if p.to.IsValid() {
			w += "->" + p.to.String()
		}
		k = append(k, w)
	}
	return k
}

func TestAcquireAndApplyEverything(t *testing.T) {
	routes := dhcpv4.OptClasslessStaticRoute(
		&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(0, 0, 0, 0).To4(), Mask: net.CIDRMask(0, 32)}, Router: net.IPv4(192, 0, 2, 254).To4()},
		&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(198, 51, 100, 0).To4(), Mask: net.CIDRMask(24, 32)}, Router: net.IPv4(192, 0, 2, 9).To4()},
		&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(203, 0, 113, 0).To4(), Mask: net.CIDRMask(25, 32)}, Router: net.IPv4zero.To4()},
	)
	srv := &server{lease: 3600, extra: dhcpv4.Options{
		dhcpv4.OptionRouter.Code():               {192, 0, 2, 1},
		dhcpv4.OptionClasslessStaticRoute.Code(): routes.Value.ToBytes(),
		dhcpv4.OptionInterfaceMTU.Code():         {0x05, 0xa0}, // 1440
		dhcpv4.OptionDomainNameServer.Code():     {192, 0, 2, 53, 192, 0, 2, 54},
		dhcpv4.OptionDNSDomainSearchList.Code():  (&rfc1035label.Labels{Labels: []string{"a.example", "example"}}).ToBytes(),
		dhcpv4.OptionDomainName.Code():           []byte("ignored.example"),
		dhcpv4.OptionHostName.Code():             []byte("leased-host"),
	}}
	s := newSim(t, srv, 10*time.Minute)
	events, leases := s.run(newClient())
	if want := []string{"DISCOVER@0s", "REQUEST@0s"}; !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	if want := []string{"apply 192.0.2.50/24 at 0s"}; !reflect.DeepEqual(events, want) {
		t.Fatalf("events %v; want %v", events, want)
	}
	disc, req := srv.got[0], srv.got[1]
	if !disc.Options.Has(dhcpv4.OptionRapidCommit) || disc.HostName() != "vm1" || !disc.IsOptionRequested(dhcpv4.OptionClasslessStaticRoute) {
		t.Errorf("DISCOVER lacks rapid commit, hostname or option 121 request: %v", disc.Options)
	}
	if !req.RequestedIPAddress().Equal(net.IPv4(192, 0, 2, 50)) || !req.ServerIdentifier().Equal(net.IPv4(192, 0, 2, 1)) || req.TransactionID != disc.TransactionID {
		t.Errorf("REQUEST = %v; want 192.0.2.50 requested from 192.0.2.1 with the DISCOVER's xid", req.Options)
	}
	l := leases[0]
	// Option 121 wins over the Router option (RFC 3442).
	wantRoutes := []Route{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.254")},
		{Dst: netip.MustParsePrefix("198.51.100.0/24"), Gw: netip.MustParseAddr("192.0.2.9")},
		{Dst: netip.MustParsePrefix("203.0.113.0/25")},
	}
	if !reflect.DeepEqual(l.Routes(), wantRoutes) {
		t.Errorf("Routes() = %v; want %v", l.Routes(), wantRoutes)
	}
	if l.MTU != 1440 || l.Hostname != "leased-host" || !reflect.DeepEqual(l.Search, []string{"a.example", "example"}) ||
		!reflect.DeepEqual(l.DNS, []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54")}) {
		t.Errorf("lease = %v; want mtu 1440, hostname leased-host, search a.example example, dns 192.0.2.53 192.0.2.54", l)
	}
	if l.Time != time.Hour || l.T1 != 30*time.Minute || l.T2 != 52*time.Minute+30*time.Second || !l.Start.Equal(t0) {
		t.Errorf("lease times %v %v %v from %v; want 1h 30m 52m30s from t0", l.Time, l.T1, l.T2, l.Start)
	}
}

func TestRouterOptionWithoutStaticRoutes(t *testing.T) {
	srv := &server{lease: 600, rapid: true, extra: dhcpv4.Options{
		dhcpv4.OptionRouter.Code():     {192, 0, 2, 1, 192, 0, 2, 2},
		dhcpv4.OptionDomainName.Code(): []byte("example.test"),
	}}
	s := newSim(t, srv, time.Minute)
	_, leases := s.run(newClient())
	// Rapid commit: one exchange.
	if want := []string{"DISCOVER@0s"}; !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	if len(leases) != 1 {
		t.Fatalf("leases %v; want one", leases)
	}
	want := []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("192.0.2.1")}}
	if !reflect.DeepEqual(leases[0].Routes(), want) || !reflect.DeepEqual(leases[0].Search, []string{"example.test"}) {
		t.Errorf("lease %v; want default via 192.0.2.1, search example.test", leases[0])
	}
}

func TestRenewAtT1(t *testing.T) {
	srv := &server{lease: 100}
	s := newSim(t, srv, 120*time.Second)
	events, leases := s.run(newClient())
	// T1 = 50 s: a unicast REQUEST to the server, with ciaddr; the renewed
	// lease runs from then; the next T1 is at 100 s.
	want := []string{"DISCOVER@0s", "REQUEST@0s", "REQUEST@50s->192.0.2.1", "REQUEST@1m40s->192.0.2.1"}
	if !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	renew := srv.got[2]
	if !renew.ClientIPAddr.Equal(net.IPv4(192, 0, 2, 50)) || renew.Options.Has(dhcpv4.OptionRequestedIPAddress) || renew.Options.Has(dhcpv4.OptionServerIdentifier) {
		t.Errorf("renewing REQUEST: ciaddr %v, options %v; want ciaddr 192.0.2.50 and no options 50, 54", renew.ClientIPAddr, renew.Options)
	}
	if len(leases) != 3 || !leases[1].Start.Equal(t0.Add(50*time.Second)) {
		t.Fatalf("leases %v; want 3, the second from 50 s", leases)
	}
	if want := []string{"apply 192.0.2.50/24 at 0s", "apply 192.0.2.50/24 at 50s", "apply 192.0.2.50/24 at 1m40s"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v; want %v", events, want)
	}
}

func TestRebindThenExpire(t *testing.T) {
	srv := &server{lease: 200}
	s := newSim(t, srv, 300*time.Second)
	// The server goes away once the lease is bound.
	s.at[time.Second] = func() { srv.silent = true }
	events, _ := s.run(newClient())
	// T1 100 s: renew unicast, retry halfway to T2 (175 s), not more often
	// than every 5 s; T2 175 s: rebind broadcast, retry halfway to expiry;
	// at 200 s the lease is dropped and discovery starts over.
	want := []string{
		"DISCOVER@0s", "REQUEST@0s",
		"REQUEST@1m40s->192.0.2.1", "REQUEST@2m17.5s->192.0.2.1", "REQUEST@2m36.25s->192.0.2.1", "REQUEST@2m45.625s->192.0.2.1", "REQUEST@2m50.625s->192.0.2.1",
		"REQUEST@2m55s", "REQUEST@3m7.5s", "REQUEST@3m13.75s", "REQUEST@3m18.75s",
		"DISCOVER@3m20s", "DISCOVER@3m21s", "DISCOVER@3m23s", "DISCOVER@3m27s", "DISCOVER@3m35s", "DISCOVER@3m51s", "DISCOVER@4m23s",
	}
	if !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent\n%v\nwant\n%v", s.kinds(), want)
	}
	if want := []string{"apply 192.0.2.50/24 at 0s", "drop 192.0.2.50/24 at 3m20s"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v; want %v", events, want)
	}
}

func TestNakOnRenewDropsLease(t *testing.T) {
	srv := &server{lease: 100}
	s := newSim(t, srv, 55*time.Second)
	s.at[10*time.Second] = func() { srv.nak = true }
	events, _ := s.run(newClient())
	if want := []string{"apply 192.0.2.50/24 at 0s", "drop 192.0.2.50/24 at 50s"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v; want %v", events, want)
	}
	// The first NAK restarts discovery at once; NAKs in a row back off.
	if want := []string{"DISCOVER@0s", "REQUEST@0s", "REQUEST@50s->192.0.2.1", "DISCOVER@50s", "REQUEST@50s", "DISCOVER@51s", "REQUEST@51s", "DISCOVER@53s", "REQUEST@53s"}; !reflect.DeepEqual(s.kinds(), want) {
		t.Errorf("sent %v; want %v", s.kinds(), want)
	}
}

func TestNoServerRetransmits(t *testing.T) {
	s := newSim(t, &server{silent: true}, 3*time.Minute)
	events, _ := s.run(newClient())
	want := []string{"DISCOVER@0s", "DISCOVER@1s", "DISCOVER@3s", "DISCOVER@7s", "DISCOVER@15s", "DISCOVER@31s", "DISCOVER@1m3s", "DISCOVER@2m7s"}
	if !reflect.DeepEqual(s.kinds(), want) || len(events) != 0 {
		t.Errorf("sent %v, events %v; want %v and none", s.kinds(), events, want)
	}
	// Each retransmission counts the seconds since the first.
	if got := s.sent[3].m.NumSeconds; got != 7 {
		t.Errorf("secs of the 4th DISCOVER = %d; want 7", got)
	}
}

func TestLinkBackRebootsThenKeepsLease(t *testing.T) {
	srv := &server{lease: 3600}
	s := newSim(t, srv, 30*time.Second)
	s.at[10*time.Second] = func() { srv.silent = true; s.ctl <- Restart }
	events, _ := s.run(newClient())
	// INIT-REBOOT: REQUEST broadcast for the lease held (option 50, no
	// ciaddr, no server id), once more after 1 s; no answer keeps the lease.
	want := []string{"DISCOVER@0s", "REQUEST@0s", "REQUEST@10s", "REQUEST@11s"}
	if !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	r := srv.got[2]
	if !r.RequestedIPAddress().Equal(net.IPv4(192, 0, 2, 50)) || r.Options.Has(dhcpv4.OptionServerIdentifier) || !r.ClientIPAddr.IsUnspecified() {
		t.Errorf("rebooting REQUEST: %v ciaddr %v; want option 50 192.0.2.50, no server id, no ciaddr", r.Options, r.ClientIPAddr)
	}
	if want := []string{"apply 192.0.2.50/24 at 0s"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v; want %v", events, want)
	}
}

func TestStopReleases(t *testing.T) {
	srv := &server{lease: 3600}
	s := newSim(t, srv, time.Minute)
	s.at[5*time.Second] = func() { s.ctl <- Stop }
	events, _ := s.run(newClient())
	if want := []string{"DISCOVER@0s", "REQUEST@0s", "RELEASE@5s->192.0.2.1"}; !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	rel := srv.got[2]
	if !rel.ClientIPAddr.Equal(net.IPv4(192, 0, 2, 50)) || !rel.ServerIdentifier().Equal(net.IPv4(192, 0, 2, 1)) {
		t.Errorf("RELEASE ciaddr %v server %v; want 192.0.2.50 to 192.0.2.1", rel.ClientIPAddr, rel.ServerIdentifier())
	}
	if want := []string{"apply 192.0.2.50/24 at 0s", "drop 192.0.2.50/24 at 5s"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v; want %v", events, want)
	}
}

func TestIgnoresOthersMessages(t *testing.T) {
	c := newClient()
	c.Start(t0)
	offer := &dhcpv4.DHCPv4{OpCode: dhcpv4.OpcodeBootReply, TransactionID: c.xid, ClientHWAddr: net.HardwareAddr{1, 2, 3, 4, 5, 6}, YourIPAddr: net.IPv4(192, 0, 2, 7),
		Options: dhcpv4.Options{53: {byte(dhcpv4.MessageTypeOffer)}, 54: {192, 0, 2, 1}}}
	if r := c.Receive(t0, offer); r.Send != nil || c.State() != Selecting {
		t.Errorf("an OFFER for another MAC moved the client to %v", c.State())
	}
	offer.ClientHWAddr = hw
	offer.TransactionID[0]++
	if r := c.Receive(t0, offer); r.Send != nil || c.State() != Selecting {
		t.Errorf("an OFFER with another xid moved the client to %v", c.State())
	}
	offer.TransactionID = c.xid
	offer.OpCode = dhcpv4.OpcodeBootRequest
	if r := c.Receive(t0, offer); r.Send != nil {
		t.Errorf("a BOOTREQUEST was taken for an OFFER")
	}
}

func TestFromACKTimes(t *testing.T) {
	for _, tc := range []struct {
		name            string
		opts            dhcpv4.Options
		time, t1, t2    time.Duration
		wantErr, infini bool
	}{
		{"defaults", dhcpv4.Options{51: {0, 0, 0x0e, 0x10}}, time.Hour, 30 * time.Minute, 52*time.Minute + 30*time.Second, false, false},
		{"T1 T2 given", dhcpv4.Options{51: {0, 0, 0, 120}, 58: {0, 0, 0, 10}, 59: {0, 0, 0, 20}}, 2 * time.Minute, 10 * time.Second, 20 * time.Second, false, false},
		{"T2 before T1", dhcpv4.Options{51: {0, 0, 0, 100}, 58: {0, 0, 0, 80}, 59: {0, 0, 0, 20}}, 100 * time.Second, 80 * time.Second, 87500 * time.Millisecond, false, false},
		{"infinite", dhcpv4.Options{51: {0xff, 0xff, 0xff, 0xff}}, 0, 0, 0, false, true},
		{"bad mask", dhcpv4.Options{1: {255, 0, 255, 0}}, 0, 0, 0, true, false},
	} {
		ack := &dhcpv4.DHCPv4{YourIPAddr: net.IPv4(10, 0, 2, 15), Options: tc.opts}
		l, err := FromACK(ack, t0)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: FromACK succeeded; want an error", tc.name)
			}
			continue
		}
		if err != nil || l.Time != tc.time || l.T1 != tc.t1 || l.T2 != tc.t2 || l.Expiry().IsZero() != tc.infini {
			t.Errorf("%s: FromACK = %v %v %v %v, %v; want %v %v %v", tc.name, l.Time, l.T1, l.T2, l.Expiry(), err, tc.time, tc.t1, tc.t2)
		}
		if tc.name == "defaults" && l.Addr.String() != "10.0.2.15/8" {
			t.Errorf("no subnet mask: address %v; want the class default 10.0.2.15/8", l.Addr)
		}
	}
	if _, err := FromACK(&dhcpv4.DHCPv4{YourIPAddr: net.IPv4zero}, t0); err == nil {
		t.Errorf("FromACK(no address) succeeded")
	}
}
