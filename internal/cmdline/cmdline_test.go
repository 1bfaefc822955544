package cmdline

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []Param
		rest []string
	}{
		{"", nil, nil},
		{"  quiet  ", []Param{{Key: "quiet"}}, nil},
		{"root=/dev/vda rw", []Param{{Key: "root", Value: "/dev/vda", HasValue: true}, {Key: "rw"}}, nil},
		{"root=UUID=1234-5678", []Param{{Key: "root", Value: "UUID=1234-5678", HasValue: true}}, nil},
		{`entrypoint="/bin/echo hello world"`, []Param{{Key: "entrypoint", Value: "/bin/echo hello world", HasValue: true}}, nil},
		{`"ginit.env=A=b c" x`, []Param{{Key: "ginit.env", Value: "A=b c", HasValue: true}, {Key: "x"}}, nil},
		{`a=b"c d"e f`, []Param{{Key: "a", Value: `b"c d"e`, HasValue: true}, {Key: "f"}}, nil},
		{"empty= x", []Param{{Key: "empty", HasValue: true}, {Key: "x"}}, nil},
		{"\troot=/dev/sda\nquiet", []Param{{Key: "root", Value: "/dev/sda", HasValue: true}, {Key: "quiet"}}, nil},
		{"ro -- single 3", []Param{{Key: "ro"}}, []string{"single", "3"}},
		{`x="unterminated`, []Param{{Key: "x", Value: "unterminated", HasValue: true}}, nil},
	} {
		got, rest := Split(tt.in)
		if !reflect.DeepEqual(got, tt.want) || !reflect.DeepEqual(rest, tt.rest) {
			t.Errorf("Split(%q) = %#v, %q; want %#v, %q", tt.in, got, rest, tt.want, tt.rest)
		}
	}
}

// FuzzSplit checks that Split never panics and that every parameter it
// returns came from the input: keys hold no unquoted white space.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"root=/dev/vda rw", `a="b c" "d=e f"`, `"`, `=`, "-- x", `x="`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		params, _ := Split(s)
		for _, p := range params {
			if !p.HasValue && p.Value != "" {
				t.Fatalf("Split(%q): bare word %q has a value %q", s, p.Key, p.Value)
			}
			if strings.Contains(p.Key, "=") {
				t.Fatalf("Split(%q): key %q holds '='", s, p.Key)
			}
		}
	})
}
