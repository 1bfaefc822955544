package vmrun

import (
	"reflect"
	"testing"

	"github.com/ginit-dev/ginit/internal/rundoc"
)

// -t gives the workload docker's TERM and the terminal's size; -e TERM
// comes after it, so it wins; without -t the document has neither.
func TestDocumentTerminal(t *testing.T) {
	size := &rundoc.TTY{Rows: 40, Cols: 120}
	for _, tc := range []struct {
		name    string
		o       Options
		wantEnv []string
		wantTTY *rundoc.TTY
	}{
		{"no -t", Options{Env: []string{"A=1"}}, []string{"A=1"}, nil},
		{"-t", Options{Env: []string{"A=1"}, Terminal: Terminal{TTY: true, Size: size}}, []string{"TERM=xterm", "A=1"}, size},
		{"-t, no terminal to measure", Options{Terminal: Terminal{TTY: true}}, []string{"TERM=xterm"}, nil},
		{"-t -e TERM", Options{Env: []string{"TERM=vt100"}, Terminal: Terminal{TTY: true, Size: size}}, []string{"TERM=xterm", "TERM=vt100"}, size},
	} {
		doc, err := Document(tc.o)
		if err != nil || !reflect.DeepEqual(doc.Env, tc.wantEnv) || !reflect.DeepEqual(doc.TTY, tc.wantTTY) {
			t.Errorf("%s: Document = env %q, tty %v, %v; want %q, %v", tc.name, doc.Env, doc.TTY, err, tc.wantEnv, tc.wantTTY)
		}
	}
}
