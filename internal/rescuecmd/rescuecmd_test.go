package rescuecmd

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/rtnl"
)

func TestLS(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b", "a", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("12345"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "a\nb\nlink\n"},
		{[]string{"-a"}, ".hidden\na\nb\nlink\n"},
		{[]string{filepath.Join(dir, "a")}, filepath.Join(dir, "a") + "\n\n" + dir + ":\na\nb\nlink\n"},
	} {
		var out, errb bytes.Buffer
		if st := LS(append(c.args, dir), &out, &errb); st != 0 || out.String() != c.want {
			t.Errorf("LS(%q DIR) = %d, %q, %q; want 0, %q", c.args, st, out.String(), errb.String(), c.want)
		}
	}
	var out, errb bytes.Buffer
	if st := LS([]string{"-l", dir}, &out, &errb); st != 0 || !strings.Contains(out.String(), "-rw-r--r--          5 ") ||
		!strings.Contains(out.String(), "link -> a") || !strings.HasPrefix(strings.Split(out.String(), "\n")[2], "l") {
		t.Errorf("LS(-l) = %d, %q; want modes, sizes and link -> a on an l line", st, out.String())
	}
	errb.Reset()
	if st := LS([]string{filepath.Join(dir, "missing")}, &out, &errb); st != 1 || !strings.Contains(errb.String(), "missing") {
		t.Errorf("LS(missing) = %d, stderr %q; want 1 and an error naming it", st, errb.String())
	}
}

func TestParseRoute(t *testing.T) {
	for _, c := range []struct {
		args    string
		want    rtnl.Route
		dev     string
		wantErr bool
	}{
		{"default via 10.0.2.2 dev eth0", rtnl.Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("10.0.2.2")}, "eth0", false},
		{"default via fe80::1 dev eth0", rtnl.Route{Dst: netip.MustParsePrefix("::/0"), Gw: netip.MustParseAddr("fe80::1")}, "eth0", false},
		{"10.1.2.3/8 dev eth1", rtnl.Route{Dst: netip.MustParsePrefix("10.0.0.0/8")}, "eth1", false},
		{"default via 10.0.2.2", rtnl.Route{}, "", true},
		{"default via nope dev eth0", rtnl.Route{}, "", true},
		{"default metric 5 dev eth0", rtnl.Route{}, "", true},
	} {
		r, dev, err := parseRoute(strings.Fields(c.args))
		if (err != nil) != c.wantErr || (err == nil && (!reflect.DeepEqual(r, c.want) || dev != c.dev)) {
			t.Errorf("parseRoute(%q) = %+v, %q, %v; want %+v, %q, error %v", c.args, r, dev, err, c.want, c.dev, c.wantErr)
		}
	}
}

func TestIPUsage(t *testing.T) {
	for _, args := range []string{"", "bogus", "link set eth0", "addr add 10.0.0.1 dev"} {
		err := ip(strings.Fields(args), &bytes.Buffer{})
		if !errors.Is(err, errUsage) {
			t.Errorf("ip(%q) = %v; want a usage error", args, err)
		}
	}
}

func TestLinkLine(t *testing.T) {
	l := rtnl.Link{Index: 1, Name: "lo", Flags: unix.IFF_LOOPBACK | unix.IFF_UP | unix.IFF_LOWER_UP, MTU: 65536}
	if got, want := linkLine(l), "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 state UP"; got != want {
		t.Errorf("linkLine(lo) = %q; want %q", got, want)
	}
}

func TestParseProcRoutes(t *testing.T) {
	v4 := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
		"eth0\t0002000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
	got, err := parseProcRoute(strings.NewReader(v4))
	if want := []string{"default via 10.0.2.2 dev eth0", "10.0.2.0/24 dev eth0 metric 100"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseProcRoute = %q, %v; want %q", got, err, want)
	}
	v6 := "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n" +
		"00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000002 00000400 00000001 00000000 00450003     eth0\n" +
		"fe80000000000000000000fffe000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001     eth0\n" +
		"ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0\n" +
		"00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo\n"
	got, err = parseProcRoute6(strings.NewReader(v6))
	if want := []string{"fe80::/64 dev eth0 metric 256", "default via fe80::2 dev eth0 metric 1024"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseProcRoute6 = %q, %v; want %q", got, err, want)
	}
	if _, err := parseProcRoute(strings.NewReader("h\neth0 zz 0 0 0 0 0 0\n")); err == nil {
		t.Errorf("parseProcRoute(bad hex) = nil error; want one naming the line")
	}
}
