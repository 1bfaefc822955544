package ipconfig

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		in   string
		want Entry
	}{
		{"off", Entry{Off: true}},
		{"none", Entry{Off: true}},
		{"dhcp", Entry{Method: DHCP4}},
		{"on", Entry{Method: Auto}},
		{"any", Entry{Method: Auto}},
		{"auto", Entry{Method: Auto}},
		{"bootp", Entry{Method: DHCP4}},
		{"dhcp6", Entry{Method: DHCP6 | RA}},
		{"auto6", Entry{Method: RA}},
		{"eth1:dhcp", Entry{Device: "eth1", Method: DHCP4}},
		{"eth1:off", Entry{Device: "eth1", Off: true}},
		{"eth1:dhcp6:1400", Entry{Device: "eth1", Method: DHCP6 | RA, MTU: 1400}},
		{"10.0.2.15::10.0.2.2:255.255.255.0:vm:eth0:off:10.0.2.3",
			Entry{Device: "eth0", Addr: p("10.0.2.15/24"), Gateway: a("10.0.2.2"), Hostname: "vm", DNS: []netip.Addr{a("10.0.2.3")}}},
		{"192.0.2.7:192.0.2.1:192.0.2.1:24::eth0:none:192.0.2.53:192.0.2.54:192.0.2.123",
			Entry{Device: "eth0", Addr: p("192.0.2.7/24"), Gateway: a("192.0.2.1"), DNS: []netip.Addr{a("192.0.2.53"), a("192.0.2.54")}}},
		// No netmask: the kernel's class default.
		{"10.1.2.3", Entry{Addr: p("10.1.2.3/8")}},
		{"172.16.0.9", Entry{Addr: p("172.16.0.9/16")}},
		{"192.0.2.9:::::eth2", Entry{Device: "eth2", Addr: p("192.0.2.9/24")}},
		{"[2001:db8::2]::[2001:db8::1]:64::eth0:none", Entry{Device: "eth0", Addr: p("2001:db8::2/64"), Gateway: a("2001:db8::1")}},
		{"[2001:db8::2]", Entry{Addr: p("2001:db8::2/64")}},
		{":::::eth0:dhcp", Entry{Device: "eth0", Method: DHCP4}},
		// Empty autoconf without an address: the kernel's default, any.
		{"::::myhost", Entry{Method: Auto, Hostname: "myhost"}},
		{":::::eth0", Entry{Method: Auto, Device: "eth0"}},
		// dracut: an MTU in place of DNS0.
		{"192.0.2.9::::::none:9000", Entry{Addr: p("192.0.2.9/24"), MTU: 9000}},
		{"::::::dhcp:[2001:db8::53]", Entry{Method: DHCP4, DNS: []netip.Addr{a("2001:db8::53")}}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q) = %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q) = %+v; want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dhcpp", "client"},
		{"::::::dhcpp", "autoconf"},
		{"10.0.2.300", "client"},
		{"10.0.2.15::10.0.2.2:255.0.255.0", "not contiguous"},
		{"10.0.2.15::10.0.2.2:33", "prefix length"},
		{"10.0.2.15::nope", "gateway"},
		{"10.0.2.15::[2001:db8::1]", "families"},
		{"2001:db8::2", "client"},
		{"[10.0.0.1]", "client"},
		{"[2001:db8::2", "[ without ]"},
		{"10.0.0.1::::bad_host", "hostname"},
		{"10.0.0.1:::::a/b", "device"},
		{"10.0.0.1::::::dhcp", "one or the other"},
		{"::::::dhcp:10.0.0.x", "dns"},
		{"0.0.0.0", "unicast"},
		{"eth0:dhcp:12", "mtu"},
		{"1:2:3:4:5:6:7:8:9:10:11", "fields"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v; want an error about %q", tc.in, err, tc.want)
		}
	}
}

func TestPlan(t *testing.T) {
	p, errs := NewPlan(nil)
	if e, ok := p.For("eth0", true); !ok || e.Method != Auto || p.Off() || len(errs) > 0 {
		t.Errorf("empty plan: For(eth0) = %+v, %v, Off %v; want Auto, true, false", e, ok, p.Off())
	}
	p, _ = NewPlan([]string{"off"})
	if _, ok := p.For("eth0", true); ok || !p.Off() {
		t.Errorf("ip=off: For(eth0) ok = %v, Off = %v; want false, true", ok, p.Off())
	}
	p, errs = NewPlan([]string{"192.0.2.2::192.0.2.1:24::eth1:none", "eth2:dhcp6", "bogus"})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "ip=bogus") {
		t.Errorf("NewPlan errors = %v; want one naming ip=bogus", errs)
	}
	if e, ok := p.For("eth1", false); !ok || !e.Static() {
		t.Errorf("For(eth1) = %+v, %v; want the static entry", e, ok)
	}
	if e, ok := p.For("eth2", false); !ok || e.Method != DHCP6|RA {
		t.Errorf("For(eth2) = %+v, %v; want dhcp6", e, ok)
	}
	if _, ok := p.For("eth0", true); ok {
		t.Errorf("For(eth0) configured a link no ip= names")
	}
	// A static entry without a device goes to the first link; a dynamic one
	// to every link.
	p, _ = NewPlan([]string{"192.0.2.2:::24"})
	if _, ok := p.For("eth0", true); !ok {
		t.Errorf("static without device: first link not configured")
	}
	if _, ok := p.For("eth1", false); ok {
		t.Errorf("static without device: second link configured too")
	}
	p, _ = NewPlan([]string{"eth0:off", "dhcp"})
	if _, ok := p.For("eth0", true); ok {
		t.Errorf("eth0:off then dhcp: eth0 configured")
	}
	if e, ok := p.For("eth1", false); !ok || e.Method != DHCP4 {
		t.Errorf("eth0:off then dhcp: For(eth1) = %+v, %v; want dhcp", e, ok)
	}
}

// Whatever Parse accepts, String renders back to the same entry, and
// nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"off", "dhcp", "eth0:dhcp6:1500", "10.0.2.15::10.0.2.2:255.255.255.0:vm:eth0:off:10.0.2.3:10.0.2.4:10.0.2.5",
		"[2001:db8::2]::[2001:db8::1]:64::eth0:none", "::::h", "[::1]]", "1.2.3.4::::::none:9000:aa:bb:cc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		if e.Hostname != "" && CheckHostname(e.Hostname) != nil {
			t.Fatalf("Parse(%q) accepted hostname %q", s, e.Hostname)
		}
		back, err := Parse(e.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, whose String %q does not parse: %v", s, e, e.String(), err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("Parse(%q) = %+v; its String %q parses to %+v", s, e, e.String(), back)
		}
	})
}
