package dhcp6

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	hw     = net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}
	srvID  = []byte{0, 3, 0, 1, 2, 2, 2, 2, 2, 2}
	myAddr = netip.MustParseAddr("2001:db8::100")
	dns6   = netip.MustParseAddr("2001:db8::53")
)

type server struct {
	pref, valid uint32 // address lifetimes
	t1, t2      uint32
	rapid       bool
	silent      bool
	got         []*Message
}

func ianaWith(iaid uint32, t1, t2 uint32, a netip.Addr, pref, valid uint32) Option {
	d := binary.BigEndian.AppendUint32(nil, iaid)
	d = binary.BigEndian.AppendUint32(d, t1)
	d = binary.BigEndian.AppendUint32(d, t2)
	a16 := a.As16()
	addr := append(a16[:], 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(addr[16:], pref)
	binary.BigEndian.PutUint32(addr[20:], valid)
	return Option{OptIANA, appendOptions(d, []Option{{OptIAAddr, addr}})}
}

func (s *server) reply(m *Message) []*Message {
	s.got = append(s.got, m)
	if s.silent {
		return nil
	}
	iaid := uint32(0)
	if ia := Get(m.Options, OptIANA); len(ia) >= 4 {
		iaid = binary.BigEndian.Uint32(ia)
	}
	dns := dns6.As16()
	base := []Option{{OptClientID, Get(m.Options, OptClientID)}, {OptServerID, srvID}, {OptDNSServers, dns[:]},
		{OptDomainList, AppendName(AppendName(nil, "v6.example"), "example")}}
	r := &Message{Type: Reply, XID: m.XID, Options: base}
	switch m.Type {
	case Solicit:
		if !s.rapid || Get(m.Options, OptRapidCommit) == nil {
			r.Type = Advertise
		} else {
			r.Options = append(r.Options, Option{OptRapidCommit, nil})
		}
		r.Options = append(r.Options, ianaWith(iaid, s.t1, s.t2, myAddr, s.pref, s.valid))
	case Request, Renew, Rebind:
		r.Options = append(r.Options, ianaWith(iaid, s.t1, s.t2, myAddr, s.pref, s.valid))
	case InformationRequest:
		r.Options = append(r.Options, Option{OptInfoRefreshTime, []byte{0, 0, 0x0e, 0x10}})
	default:
		return nil
	}
	return []*Message{r}
}

type sent struct {
	at time.Duration
	m  *Message
}

var errEnd = errors.New("end of simulation")

type sim struct {
	t     *testing.T
	now   time.Time
	end   time.Time
	srv   *server
	inbox [][]byte
	sent  []sent
	ctl   chan Control
	at    map[time.Duration]func()
}

func newSim(t *testing.T, srv *server, end time.Duration) *sim {
	return &sim{t: t, now: t0, end: t0.Add(end), srv: srv, ctl: make(chan Control, 1), at: map[time.Duration]func(){}}
}

func (s *sim) Send(b []byte) error {
	m, err := Parse(b)
	if err != nil {
		s.t.Fatalf("client sent a message that does not parse: %v", err)
	}
	s.sent = append(s.sent, sent{s.now.Sub(t0), m})
	for _, r := range s.srv.reply(m) {
		s.inbox = append(s.inbox, r.Bytes())
	}
	return nil
}

func (s *sim) Recv(deadline time.Time) ([]byte, error) {
	if len(s.inbox) > 0 {
		b := s.inbox[0]
		s.inbox = s.inbox[1:]
		return b, nil
	}
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

var msgNames = map[uint8]string{Solicit: "SOLICIT", Advertise: "ADVERTISE", Request: "REQUEST", Renew: "RENEW", Rebind: "REBIND", Reply: "REPLY", Release: "RELEASE", InformationRequest: "INFORMATION-REQUEST"}

func (s *sim) kinds() []string {
	var k []string
	for _, p := range s.sent {
		k = append(k, msgNames[p.m.Type]+"@"+p.at.String())
	}
	return k
}

func (s *sim) run(c *Client) (events []string, leases []Lease) {
	d := &Driver{Client: c, Conn: s, Now: func() time.Time { return s.now }, Ctl: s.ctl,
		Handle: func(r Result) {
			if r.Drop != nil {
				events = append(events, fmt.Sprintf("drop %v at %v", r.Drop.Addr, s.now.Sub(t0)))
			}
			if r.Apply != nil {
				events = append(events, fmt.Sprintf("apply %v at %v", r.Apply.Addr, s.now.Sub(t0)))
				leases = append(leases, *r.Apply)
			}
		}}
	if err := d.Run(); err != nil && err != errEnd {
		s.t.Fatalf("Run = %v", err)
	}
	return events, leases
}

func newClient(stateless bool) *Client {
	x := uint32(0x10)
	return &Client{HW: hw, Stateless: stateless, XID: func() uint32 { x++; return x }}
}

func TestSolicitRequestRenew(t *testing.T) {
	srv := &server{pref: 100, valid: 200, t1: 50, t2: 80}
	s := newSim(t, srv, 120*time.Second)
	events, leases := s.run(newClient(false))
	want := []string{"SOLICIT@0s", "REQUEST@0s", "RENEW@50s", "RENEW@1m40s"}
	if !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	sol, req, ren := srv.got[0], srv.got[1], srv.got[2]
	if !bytes.Equal(Get(sol.Options, OptClientID), []byte{0, 3, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56}) || Get(sol.Options, OptRapidCommit) == nil ||
		Get(sol.Options, OptElapsedTime) == nil || Get(sol.Options, OptIANA) == nil || Get(sol.Options, OptServerID) != nil {
		t.Errorf("SOLICIT options %v; want DUID-LL client id, rapid commit, elapsed time, IA_NA, no server id", sol.Options)
	}
	if !bytes.Equal(Get(req.Options, OptServerID), srvID) || req.XID == sol.XID {
		t.Errorf("REQUEST: server id %x, xid %x (solicit %x); want the advertised server and a new xid", Get(req.Options, OptServerID), req.XID, sol.XID)
	}
	if !bytes.Equal(Get(ren.Options, OptServerID), srvID) || !bytes.Contains(Get(ren.Options, OptIANA), myAddr.AsSlice()) {
		t.Errorf("RENEW lacks the server id or the address held: %v", ren.Options)
	}
	if want := []string{"apply 2001:db8::100 at 0s", "apply 2001:db8::100 at 50s", "apply 2001:db8::100 at 1m40s"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v; want %v", events, want)
	}
	l := leases[0]
	if l.Valid != 200*time.Second || l.Preferred != 100*time.Second || l.T1 != 50*time.Second || l.T2 != 80*time.Second ||
		!reflect.DeepEqual(l.DNS, []netip.Addr{dns6}) || !reflect.DeepEqual(l.Search, []string{"v6.example", "example"}) {
		t.Errorf("lease %+v; want valid 200s preferred 100s T1 50s T2 80s, dns and search", l)
	}
}

func TestRapidCommitAndDefaultTimes(t *testing.T) {
	srv := &server{pref: 1000, valid: 2000, rapid: true}
	s := newSim(t, srv, time.Minute)
	_, leases := s.run(newClient(false))
	if want := []string{"SOLICIT@0s"}; !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	// T1 and T2 0: the client picks 0.5 and 0.8 of the preferred lifetime.
	if len(leases) != 1 || leases[0].T1 != 500*time.Second || leases[0].T2 != 800*time.Second {
		t.Errorf("leases %+v; want one with T1 500s T2 800s", leases)
	}
}

func TestRebindThenExpire(t *testing.T) {
	srv := &server{pref: 100, valid: 120, t1: 50, t2: 80}
	s := newSim(t, srv, 130*time.Second)
	s.at[time.Second] = func() { srv.silent = true }
	events, _ := s.run(newClient(false))
	want := []string{"SOLICIT@0s", "REQUEST@0s", "RENEW@50s", "RENEW@1m5s", "RENEW@1m12.5s", "RENEW@1m17.5s",
		"REBIND@1m20s", "REBIND@1m40s", "REBIND@1m50s", "REBIND@1m55s", "SOLICIT@2m0s", "SOLICIT@2m1s", "SOLICIT@2m3s", "SOLICIT@2m7s"}
	if !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent\n%v\nwant\n%v", s.kinds(), want)
	}
	if Get(srv.got[6].Options, OptServerID) != nil {
		t.Errorf("REBIND carries a server id")
	}
	if want := []string{"apply 2001:db8::100 at 0s", "drop 2001:db8::100 at 2m0s"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v; want %v", events, want)
	}
}

func TestStatelessAndRelease(t *testing.T) {
	srv := &server{}
	s := newSim(t, srv, 90*time.Minute)
	events, leases := s.run(newClient(true))
	// The refresh time (3600 s) asks again.
	if want := []string{"INFORMATION-REQUEST@0s", "INFORMATION-REQUEST@1h0m0s"}; !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	if len(leases) != 2 || leases[0].Addr.IsValid() || !reflect.DeepEqual(leases[0].DNS, []netip.Addr{dns6}) || len(events) != 2 {
		t.Errorf("leases %+v; want DNS without an address, twice", leases)
	}

	srv = &server{pref: 100, valid: 200}
	s = newSim(t, srv, time.Minute)
	s.at[5*time.Second] = func() { s.ctl <- Stop }
	events, _ = s.run(newClient(false))
	if want := []string{"SOLICIT@0s", "REQUEST@0s", "RELEASE@5s"}; !reflect.DeepEqual(s.kinds(), want) {
		t.Fatalf("sent %v; want %v", s.kinds(), want)
	}
	rel := srv.got[2]
	if !bytes.Equal(Get(rel.Options, OptServerID), srvID) || !bytes.Contains(Get(rel.Options, OptIANA), myAddr.AsSlice()) {
		t.Errorf("RELEASE lacks the server id or the address: %v", rel.Options)
	}
	if want := []string{"apply 2001:db8::100 at 0s", "drop 2001:db8::100 at 5s"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v; want %v", events, want)
	}
}

func TestLinkBackRebinds(t *testing.T) {
	srv := &server{pref: 1000, valid: 2000}
	s := newSim(t, srv, 20*time.Second)
	s.at[10*time.Second] = func() { s.ctl <- Restart }
	s.run(newClient(false))
	if want := []string{"SOLICIT@0s", "REQUEST@0s", "REBIND@10s"}; !reflect.DeepEqual(s.kinds(), want) {
		t.Errorf("sent %v; want %v", s.kinds(), want)
	}
}

func TestIgnoresOthers(t *testing.T) {
	c := newClient(false)
	c.Start(t0)
	adv := &Message{Type: Advertise, XID: c.xid, Options: []Option{{OptClientID, []byte{0, 3, 0, 1, 9, 9, 9, 9, 9, 9}}, {OptServerID, srvID}, ianaWith(c.iaid(), 0, 0, myAddr, 10, 20)}}
	if c.Receive(t0, adv); c.State() != Soliciting {
		t.Errorf("an ADVERTISE for another client moved the client to %v", c.State())
	}
	adv.Options[0].Data = c.DUID()
	adv.Options[2] = ianaWith(c.iaid()+1, 0, 0, myAddr, 10, 20)
	if c.Receive(t0, adv); c.State() != Soliciting {
		t.Errorf("an ADVERTISE for another IA moved the client to %v", c.State())
	}
	adv.Options[2] = ianaWith(c.iaid(), 0, 0, myAddr, 10, 20)
	adv.Options = append(adv.Options, Option{OptStatusCode, []byte{0, 2}})
	if c.Receive(t0, adv); c.State() != Soliciting {
		t.Errorf("an ADVERTISE with NoAddrsAvail moved the client to %v", c.State())
	}
	if _, err := Parse([]byte{1, 2, 3, 4, 0, 1, 0, 9, 1}); err == nil {
		t.Errorf("Parse(truncated option) succeeded")
	}
}

func TestParseRA(t *testing.T) {
	ra := []byte{134, 0, 0, 0, 64, 0xc0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0}
	// Prefix 2001:db8:1::/64, on-link and autonomous.
	pi := []byte{3, 4, 64, 0xc0, 0, 0, 0x0e, 0x10, 0, 0, 0x07, 0x08, 0, 0, 0, 0}
	pi = append(pi, netip.MustParseAddr("2001:db8:1::").AsSlice()...)
	ra = append(ra, pi...)
	ra = append(ra, 5, 1, 0, 0, 0, 0, 0x05, 0xdc) // MTU 1500
	rd := []byte{25, 3, 0, 0, 0, 0, 0x02, 0x58}
	rd = append(rd, dns6.AsSlice()...)
	ra = append(ra, rd...)
	names := AppendName(nil, "v6.example")
	for (8+len(names))%8 != 0 {
		names = append(names, 0)
	}
	ra = append(ra, append([]byte{31, byte((8 + len(names)) / 8), 0, 0, 0, 0, 0x02, 0x58}, names...)...)
	got, err := ParseRA(ra)
	if err != nil {
		t.Fatal(err)
	}
	want := RA{Managed: true, Other: true, Lifetime: 1800 * time.Second, MTU: 1500,
		Prefixes:    []Prefix{{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), OnLink: true, Autonomous: true, Valid: time.Hour, Preferred: 1800 * time.Second}},
		RDNSS:       []netip.Addr{dns6},
		DNSSL:       []string{"v6.example"},
		DNSLifetime: 600 * time.Second,
	}
	if !reflect.DeepEqual(got, want) || !got.SLAAC() {
		t.Errorf("ParseRA = %+v; want %+v", got, want)
	}
	if _, err := ParseRA(append(ra[:16:16], 3, 0)); err == nil {
		t.Errorf("ParseRA(zero-length option) succeeded")
	}
	if _, err := ParseRA([]byte{133, 0, 0, 0}); err == nil {
		t.Errorf("ParseRA(a solicitation) succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add((&Message{Type: Reply, Options: []Option{ianaWith(1, 2, 3, myAddr, 4, 5), {OptDomainList, AppendName(nil, "a.b")}}}).Bytes())
	f.Add([]byte{134, 0, 0, 0, 64, 0xc0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 25, 3, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := Parse(b); err == nil {
			leaseFrom(m, 1, true, t0)
			leaseFrom(m, 1, false, t0)
		}
		ParseRA(b)
		Names(b)
	})
}
