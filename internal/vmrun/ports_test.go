package vmrun

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/testenv"
)

func TestParsePublish(t *testing.T) {
	tcp := func(ip string, host, guest int) Port {
		return Port{HostIP: ip, HostPort: host, GuestPort: guest, Proto: "tcp"}
	}
	for _, tc := range []struct {
		spec string
		want []Port
	}{
		{"80", []Port{tcp("0.0.0.0", 0, 80)}},
		{"8080:80", []Port{tcp("0.0.0.0", 8080, 80)}},
		{"8080:80/tcp", []Port{tcp("0.0.0.0", 8080, 80)}},
		{"127.0.0.1:8080:80", []Port{tcp("127.0.0.1", 8080, 80)}},
		{"127.0.0.1::80", []Port{tcp("127.0.0.1", 0, 80)}},
		{"[127.0.0.1]:8080:80", []Port{tcp("127.0.0.1", 8080, 80)}},
		{"5353:53/udp", []Port{{HostIP: "0.0.0.0", HostPort: 5353, GuestPort: 53, Proto: "udp"}}},
		{"10.0.0.1:53:53/udp", []Port{{HostIP: "10.0.0.1", HostPort: 53, GuestPort: 53, Proto: "udp"}}},
		{"8000-8001:80-81", []Port{tcp("0.0.0.0", 8000, 80), tcp("0.0.0.0", 8001, 81)}},
		{"80-81", []Port{tcp("0.0.0.0", 0, 80), tcp("0.0.0.0", 0, 81)}},
		{"65535:1", []Port{tcp("0.0.0.0", 65535, 1)}},
	} {
		got, err := ParsePublish(tc.spec)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePublish(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
		}
	}
}

func TestParsePublishErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"":                  `guest port: "": want a number from 1 to 65535`,
		"http":              `guest port: "http": want a number`,
		"8080:":             `guest port: ""`,
		"0:80":              `host port: "0": want a number from 1 to 65535`,
		"8080:65536":        `guest port: "65536"`,
		"8080:80/sctp":      `protocol "sctp": want tcp or udp`,
		"8080:80/":          `protocol "": want tcp or udp`,
		"localhost:8080:80": `host address "localhost": want an IP address`,
		"[::1]:8080:80":     `host address "::1": QEMU's user network forwards IPv4 addresses only`,
		"8000-8002:80-81":   "want ranges of one length",
		"81-80":             `range "81-80": want LOW-HIGH`,
		"+80":               `"+80": want a number`,
		"1.2.3.4:x:80":      `host port: "x"`,
	} {
		_, err := ParsePublish(spec)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "-p ") {
			t.Errorf("ParsePublish(%q) = %v; want an error naming -p with %q", spec, err, want)
		}
	}
}

func TestExposedPorts(t *testing.T) {
	got, err := ExposedPorts(map[string]struct{}{"8080/tcp": {}, "53/udp": {}, "9000": {}})
	want := []Port{
		{HostIP: "127.0.0.1", GuestPort: 53, Proto: "udp"},
		{HostIP: "127.0.0.1", GuestPort: 8080, Proto: "tcp"},
		{HostIP: "127.0.0.1", GuestPort: 9000, Proto: "tcp"},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ExposedPorts = %+v, %v; want %+v", got, err, want)
	}
	if _, err := ExposedPorts(map[string]struct{}{"80/sctp": {}}); err == nil || !strings.Contains(err.Error(), `"80/sctp"`) {
		t.Errorf("ExposedPorts(80/sctp) = %v; want an error naming it", err)
	}
}

func TestReservePorts(t *testing.T) {
	got, err := ReservePorts([]Port{
		{HostIP: "127.0.0.1", GuestPort: 80, Proto: "tcp"},
		{HostIP: "127.0.0.1", GuestPort: 53, Proto: "udp"},
	})
	if err != nil {
		t.Fatalf("ReservePorts = %v", err)
	}
	for _, p := range got {
		if p.HostPort == 0 {
			t.Errorf("ReservePorts gave %+v no host port", p)
		}
	}
	if s := got[0].String(); s != "80/tcp -> 127.0.0.1:"+strconv.Itoa(got[0].HostPort) {
		t.Errorf("Port.String() = %q; want docker port's form", s)
	}
	// The ports were released: QEMU binds them next.
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(got[0].HostPort)))
	if err != nil {
		t.Fatalf("port %d still held after ReservePorts: %v", got[0].HostPort, err)
	}
	defer l.Close()

	busy := l.Addr().(*net.TCPAddr).Port
	_, err = ReservePorts([]Port{{HostIP: "127.0.0.1", HostPort: busy, GuestPort: 8080, Proto: "tcp"}})
	want := "publish 8080/tcp: host port 127.0.0.1:" + strconv.Itoa(busy) + "/tcp is already in use"
	if err == nil || err.Error() != want {
		t.Errorf("ReservePorts(busy port) = %v; want %q", err, want)
	}
	// Two rules for one host port cannot both have it.
	free := got[1].HostPort
	_, err = ReservePorts([]Port{
		{HostIP: "127.0.0.1", HostPort: free, GuestPort: 53, Proto: "udp"},
		{HostIP: "127.0.0.1", HostPort: free, GuestPort: 54, Proto: "udp"},
	})
	if err == nil || !strings.Contains(err.Error(), "publish 54/udp") {
		t.Errorf("ReservePorts(one host port twice) = %v; want the second named", err)
	}
}

func TestNetOptions(t *testing.T) {
	got := netOptions([]Port{
		{HostIP: "0.0.0.0", HostPort: 8080, GuestPort: 80, Proto: "tcp"},
		{HostIP: "127.0.0.1", HostPort: 5353, GuestPort: 53, Proto: "udp"},
	})
	if want := "hostfwd=tcp:0.0.0.0:8080-:80,hostfwd=udp:127.0.0.1:5353-:53"; got != want {
		t.Errorf("netOptions = %q; want %q", got, want)
	}
}

// -P reads the ExposedPorts from the base disk; a root without an image
// configuration exposes nothing.
func TestExposedPortsFromDisk(t *testing.T) {
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	disk := func(config string) string {
		root := t.TempDir()
		if config != "" {
			os.MkdirAll(filepath.Join(root, ".ginit"), 0o755)
			os.WriteFile(filepath.Join(root, imagespec.ConfigPath), []byte(config), 0o644)
		}
		img := filepath.Join(t.TempDir(), "disk.img")
		if out, err := exec.Command("mkfs.ext4", "-q", "-d", root, img, "8M").CombinedOutput(); err != nil {
			t.Fatalf("mkfs.ext4: %v: %s", err, out)
		}
		return img
	}
	got, err := exposedPorts(t.Context(), disk(`{"config":{"ExposedPorts":{"8080/tcp":{}}}}`))
	if want := []Port{{HostIP: "127.0.0.1", GuestPort: 8080, Proto: "tcp"}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("exposedPorts = %+v, %v; want %+v", got, err, want)
	}
	if got, err := exposedPorts(t.Context(), disk("")); err != nil || len(got) != 0 {
		t.Errorf("exposedPorts(no configuration) = %+v, %v; want none", got, err)
	}
	if _, err := exposedPorts(t.Context(), disk("{")); err == nil || !strings.HasPrefix(err.Error(), "-P: the image's configuration") {
		t.Errorf("exposedPorts(bad configuration) = %v; want an error naming -P", err)
	}
}
