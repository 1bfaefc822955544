package rundoc

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/imagespec"
)

func TestParse(t *testing.T) {
	doc := `{"version":1,"entrypoint":["/bin/sh","-c"],"cmd":["echo hi"],"env":["A=1","B="],
		"workdir":"/srv","user":"1000:1000","hostname":"web-1"}`
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
		{`{"version":1,"env":["A=s3cret"],"volumes":[]}`, `unknown field "volumes"`},
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
