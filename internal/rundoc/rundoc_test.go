package rundoc

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/imagespec"
)

func TestParse(t *testing.T) {
	doc := `{"version":1,"entrypoint":["/bin/sh","-c"],"cmd":["echo hi"],"env":["A=1","B="],
		"workdir":"/srv","user":"1000:1000","hostname":"web-1","tty":{"rows":50,"cols":132}}`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse = %v; want no error", err)
	}
	got := d.Override()
	want := imagespec.Override{
		Entrypoint: []string{"/bin/sh", "-c"}, HasEntrypoint: true,
		Cmd: []string{"echo hi"}, HasCmd: true,
		Env: []string{"A=1", "B="}, Workdir: "/srv", User: "1000:1000",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Override() = %+v; want %+v", got, want)
	}
	if d.Hostname != "web-1" {
		t.Errorf("Hostname = %q; want web-1", d.Hostname)
	}
	if d.TTY == nil || *d.TTY != (TTY{Rows: 50, Cols: 132}) {
		t.Errorf("TTY = %v; want 50 rows, 132 columns", d.TTY)
	}
}

func TestParseRunOptions(t *testing.T) {
	doc := `{"version":1,"dns":["192.0.2.53","2001:db8::53"],"extra_hosts":["db:10.0.0.2","v6:2001:db8::1"],
		"tmpfs":{"/cache":"size=1m,exec","/run/x":""},"read_only":true,"stop_signal":"SIGUSR1","onerror":"reboot",
		"volumes":[{"type":"virtiofs","source":"v0","target":"/data","read_only":true},{"type":"disk","source":"ginit-vol1","target":"/var/lib/db"}]}`
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse = %v; want no error", err)
	}
	if !d.ReadOnly || d.OnError != "reboot" || len(d.DNS) != 2 || len(d.Tmpfs) != 2 || len(d.Volumes) != 2 || !d.Volumes[0].ReadOnly {
		t.Errorf("Parse = %+v; want every field read", d)
	}
	if got := d.Override().StopSignal; got != "SIGUSR1" {
		t.Errorf("Override().StopSignal = %q; want SIGUSR1", got)
	}
	for _, tc := range []struct {
		in   string
		want Host
	}{
		{"db:10.0.0.2", Host{"db", netip.MustParseAddr("10.0.0.2")}},
		{"v6:2001:db8::1", Host{"v6", netip.MustParseAddr("2001:db8::1")}},
	} {
		if got, err := ParseHost(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseHost(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseAbsentAndEmpty(t *testing.T) {
	d, err := Parse([]byte(`{"version":1}`))
	if err != nil {
		t.Fatalf("Parse = %v; want no error", err)
	}
	if o := d.Override(); o.HasEntrypoint || o.HasCmd || o.Env != nil || o.Workdir != "" || o.User != "" {
		t.Errorf("Override() of an empty document = %+v; want the zero Override", o)
	}
	// [] clears, as docker run --entrypoint "" does; null keeps the image's.
	d, err = Parse([]byte(`{"version":1,"entrypoint":[],"cmd":null}`))
	if err != nil {
		t.Fatalf("Parse = %v; want no error", err)
	}
	if o := d.Override(); !o.HasEntrypoint || len(o.Entrypoint) != 0 || o.HasCmd {
		t.Errorf("Override() = %+v; want HasEntrypoint with none, no Cmd", o)
	}
}

// TestMergeOrder: image < document < kernel command line.
func TestMergeOrder(t *testing.T) {
	d, err := Parse([]byte(`{"version":1,"env":["SECRET=doc","X=doc"],"user":"nobody"}`))
	if err != nil {
		t.Fatal(err)
	}
	img := imagespec.Image{Config: imagespec.Config{Cmd: []string{"/app"}, Env: []string{"X=img", "Y=img"}}}
	cmdline := imagespec.Override{Env: []string{"X=cmdline"}}
	s, err := imagespec.Merge(img, d.Override(), cmdline)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"X": "cmdline", "Y": "img", "SECRET": "doc"} {
		if got, _ := imagespec.Getenv(s.Env, name); got != want {
			t.Errorf("Merge: %s = %q; want %q", name, got, want)
		}
	}
	if s.User != "nobody" {
		t.Errorf("Merge: User = %q; want nobody", s.User)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{``, "empty"},
		{`{"version":1`, "cut short"},
		{`{"version":1,"env":["A=s3cret"],"mounts":[]}`, `unknown field "mounts"`},
		{`{"version":1,"dns":["8.8.8"]}`, `field "dns"[0]: want an IP address`},
		{`{"version":1,"extra_hosts":["db"]}`, `field "extra_hosts"[0]: "db": want NAME:IP`},
		{`{"version":1,"extra_hosts":[":10.0.0.1"]}`, `want a host name`},
		{`{"version":1,"stop_signal":"SIGNOPE"}`, `field "stop_signal"`},
		{`{"version":1,"onerror":"explode"}`, `field "onerror"`},
		{`{"version":1,"tmpfs":{"run":""}}`, `field "tmpfs": target "run": want a clean absolute path`},
		{`{"version":1,"tmpfs":{"/x":"size=1m,bogus"}}`, `field "tmpfs" (/x): tmpfs option "bogus": unknown`},
		{`{"version":1,"tmpfs":{"/x":"color=red"}}`, `tmpfs option "color"`},
		{`{"version":1,"volumes":[{"type":"nfs","source":"a","target":"/a"}]}`, `field "volumes"[0]: type "nfs"`},
		{`{"version":1,"volumes":[{"type":"disk","source":"","target":"/a"}]}`, `field "volumes"[0]: source: want 1 to 20 bytes`},
		{`{"version":1,"volumes":[{"type":"disk","source":"123456789012345678901","target":"/a"}]}`, `want 1 to 20 bytes`},
		{`{"version":1,"volumes":[{"type":"virtiofs","source":"a","target":"/a/../b"}]}`, `target "/a/../b"`},
		{`{"version":1,"volumes":[{"type":"virtiofs","source":"a","target":"/"}]}`, `target "/"`},
		{`{"version":1,"tmpfs":{"/a":""},"volumes":[{"type":"virtiofs","source":"a","target":"/a"}]}`, `target "/a": mounted twice`},
		{`{"env":["A=1"]}`, `field "version": got 0, want 1`},
		{`{"version":2}`, `field "version": got 2, want 1`},
		{`{"version":1,"env":"A=s3cret"}`, `field "env": want []string`},
		{`{"version":1,"cmd":[1]}`, `field "cmd`},
		{`{"version":1,"env":["s3cret"]}`, `field "env"[0]: want NAME=VALUE`},
		{`{"version":1,"env":["=s3cret"]}`, `field "env"[0]`},
		{`{"version":1,"env":["A=s3\u0000cret"]}`, `field "env"[0] (A): contains a NUL byte`},
		{`{"version":1,"workdir":"srv"}`, `field "workdir": want an absolute path`},
		{`{"version":1,"hostname":"a b"}`, `field "hostname"`},
		{`{"version":1} {}`, "data after the JSON object"},
		{`{"version":1,"tty":{"rows":70000,"cols":80}}`, `field "tty.rows": want uint16`},
		{`[1]`, "want rundoc.Document"},
		{`{"version":1,"user":"s3cret" x}`, "syntax error at byte"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v; want an error containing %q", tc.doc, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Parse(%s) = %v; the error quotes a value", tc.doc, err)
		}
	}
	if _, err := Parse(make([]byte, MaxSize+1)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("Parse(%d bytes) = %v; want a size error", MaxSize+1, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":1,"entrypoint":["/bin/sh"],"cmd":["-c","x"],"env":["A=1"],"workdir":"/","user":"0","hostname":"h"}`))
	f.Add([]byte(`{"version":1,"entrypoint":[]}`))
	f.Add([]byte(`{"version":1,"dns":["::1"],"extra_hosts":["a:1.2.3.4"],"tmpfs":{"/t":"size=1m,exec"},"read_only":true,"stop_signal":"USR1",` +
		`"volumes":[{"type":"disk","source":"s","target":"/v","read_only":true}]}`))
	f.Add([]byte(`{"version":1,"env":["A"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		// What Parse accepts, Merge takes without surprise.
		o := d.Override()
		if o.HasEntrypoint != (d.Entrypoint != nil) || o.HasCmd != (d.Cmd != nil) {
			t.Errorf("Override() = %+v; does not follow %+v", o, d)
		}
		for _, kv := range o.Env {
			if name, _, ok := strings.Cut(kv, "="); !ok || name == "" {
				t.Errorf("Parse accepted env entry without a name: %q", kv)
			}
		}
		img := imagespec.Image{Config: imagespec.Config{Cmd: []string{"/app"}}}
		_, _ = imagespec.Merge(img, o)
	})
}
