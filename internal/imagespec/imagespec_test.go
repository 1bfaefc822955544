package imagespec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The cases the two splitters this one replaced were tested with; where
// they disagreed (\$ and \` inside double quotes, a trailing backslash),
// the shell's answer wins.
func TestWords(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []string
		wantErr error
	}{
		{"", nil, nil},
		{"  a  b ", []string{"a", "b"}, nil},
		{"/bin/echo hello", []string{"/bin/echo", "hello"}, nil},
		{`/bin/sh -c 'echo $HOME; exit 3'`, []string{"/bin/sh", "-c", "echo $HOME; exit 3"}, nil},
		{`a "b \"c\" d" e\ f`, []string{"a", `b "c" d`, "e f"}, nil},
		{`sh -c "echo \"hi\" \$x \` + "`" + `date\` + "`" + `"`, []string{"sh", "-c", "echo \"hi\" $x `date`"}, nil},
		{`''`, []string{""}, nil},
		{`"" x`, []string{"", "x"}, nil},
		{`x'y'"z"`, []string{"xyz"}, nil},
		{`--port=80 'it''s'`, []string{"--port=80", "its"}, nil},
		{`a\\b "c\d"`, []string{`a\b`, `c\d`}, nil},
		{"a\\\nb \"c\\\nd\"", []string{"ab", "cd"}, nil},
		{"tab\tnewline\nend", []string{"tab", "newline", "end"}, nil},
		{`'open`, nil, ErrUnterminatedQuote},
		{`"open`, nil, ErrUnterminatedQuote},
		{`a "b`, nil, ErrUnterminatedQuote},
		{`end\`, nil, ErrTrailingBackslash},
	} {
		got, err := Words(tt.in)
		if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Words(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseCommand(t *testing.T) {
	for in, want := range map[string][]string{
		`["sh","-c","echo hi"]`: {"sh", "-c", "echo hi"},
		` ["a b"]`:              {"a b"},
		` [] `:                  {},
		`sh -c 'echo hi'`:       {"sh", "-c", "echo hi"},
		``:                      nil,
	} {
		if got, err := ParseCommand(in); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`["a",`, `["a", 1]`} {
		if _, err := ParseCommand(in); err == nil {
			t.Errorf("ParseCommand(%q) succeeded; want an error", in)
		}
	}
}

// FuzzWords checks that Words never panics and that words joined with
// single-quote escaping split back into the same words.
func FuzzWords(f *testing.F) {
	for _, s := range []string{"a b", `'a b' "c"`, `\`, `"\"`, "a\\\nb", "\"\\`\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Words(s)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := Words(strings.Join(quoted, " "))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("Words(quote(%q)) = %q, %v; want %q", words, again, err, words)
		}
	})
}

func image(entry, cmd, env []string) Image {
	var img Image
	img.Config = Config{Entrypoint: entry, Cmd: cmd, Env: env, WorkingDir: "/srv", User: "app", StopSignal: "SIGQUIT"}
	return img
}

func TestMergeDockerSemantics(t *testing.T) {
	img := image([]string{"/bin/server"}, []string{"--port", "80"}, []string{"PATH=/usr/bin", "MODE=prod"})
	for _, tt := range []struct {
		name    string
		over    []Override
		argv    []string
		env     []string
		workdir string
		user    string
	}{
		{"image as it is", nil, []string{"/bin/server", "--port", "80"}, []string{"PATH=/usr/bin", "MODE=prod"}, "/srv", "app"},
		{"entrypoint drops Cmd", []Override{{Entrypoint: []string{"/bin/sh"}, HasEntrypoint: true}},
			[]string{"/bin/sh"}, []string{"PATH=/usr/bin", "MODE=prod"}, "/srv", "app"},
		{"cmd replaces Cmd", []Override{{Cmd: []string{"--port", "8080"}, HasCmd: true}},
			[]string{"/bin/server", "--port", "8080"}, []string{"PATH=/usr/bin", "MODE=prod"}, "/srv", "app"},
		{"both", []Override{{Entrypoint: []string{"/bin/echo"}, HasEntrypoint: true, Cmd: []string{"hi"}, HasCmd: true}},
			[]string{"/bin/echo", "hi"}, []string{"PATH=/usr/bin", "MODE=prod"}, "/srv", "app"},
		{"env, workdir, user", []Override{{Env: []string{"MODE=dev", "EXTRA=1"}, Workdir: "/tmp", User: "0:0"}},
			[]string{"/bin/server", "--port", "80"}, []string{"PATH=/usr/bin", "MODE=dev", "EXTRA=1"}, "/tmp", "0:0"},
		// A later override wins over an earlier one: a run document,
		// then the kernel command line.
		{"layered", []Override{{Env: []string{"MODE=doc", "A=1"}, User: "doc", Cmd: []string{"x"}, HasCmd: true}, {Env: []string{"A=2"}, User: "line"}},
			[]string{"/bin/server", "x"}, []string{"PATH=/usr/bin", "MODE=doc", "A=2"}, "/srv", "line"},
		{"an entrypoint after a cmd drops it", []Override{{Cmd: []string{"x"}, HasCmd: true}, {Entrypoint: []string{"/e"}, HasEntrypoint: true}},
			[]string{"/e"}, []string{"PATH=/usr/bin", "MODE=prod"}, "/srv", "app"},
	} {
		got, err := Merge(img, tt.over...)
		if err != nil {
			t.Errorf("%s: Merge() error %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got.Argv, tt.argv) || !reflect.DeepEqual(got.Env, tt.env) || got.WorkingDir != tt.workdir || got.User != tt.user || got.StopSignal != "SIGQUIT" {
			t.Errorf("%s: Merge() = %+v; want argv %q env %q workdir %q user %q", tt.name, got, tt.argv, tt.env, tt.workdir, tt.user)
		}
	}
	if _, err := Merge(Image{}); !errors.Is(err, ErrNoCommand) {
		t.Errorf("Merge(empty image) error = %v; want ErrNoCommand", err)
	}
	got, _ := Merge(image([]string{"x"}, nil, []string{"A=1"}))
	if want := []string{"PATH=" + DefaultPath, "A=1"}; !reflect.DeepEqual(got.Env, want) {
		t.Errorf("Merge(no PATH).Env = %q; want %q", got.Env, want)
	}
}

func TestMergeEnv(t *testing.T) {
	got := MergeEnv([]string{"A=1", "B=2", "A=3"}, []string{"B=x", "C="})
	if want := []string{"A=3", "B=x", "C="}; !reflect.DeepEqual(got, want) {
		t.Errorf("MergeEnv = %q; want %q", got, want)
	}
	if v, ok := Getenv([]string{"A=1", "A=2"}, "A"); !ok || v != "2" {
		t.Errorf("Getenv(A) = %q, %v; want 2, true", v, ok)
	}
	if _, ok := Getenv([]string{"AB=1"}, "A"); ok {
		t.Errorf("Getenv(A) found AB")
	}
}

func TestReadImageAndSource(t *testing.T) {
	root := t.TempDir()
	if img, err := ReadImage(root); err != nil || img.Config.Entrypoint != nil {
		t.Errorf("ReadImage(no file) = %+v, %v; want empty, nil", img, err)
	}
	if err := os.MkdirAll(filepath.Join(root, ".ginit"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, ConfigPath), []byte(`{"architecture":"amd64","config":{"Entrypoint":["/x"],"ExposedPorts":{"80/tcp":{}}}}`), 0o644)
	os.WriteFile(filepath.Join(root, SourcePath), []byte(`{"source":"docker://r/a:1","digest":"sha256:ab"}`), 0o644)
	img, err := ReadImage(root)
	if _, ok := img.Config.ExposedPorts["80/tcp"]; err != nil || img.Config.Entrypoint[0] != "/x" || !ok {
		t.Errorf("ReadImage = %+v, %v; want the entrypoint and port", img, err)
	}
	if src, err := ReadSource(root); err != nil || src.Digest != "sha256:ab" {
		t.Errorf("ReadSource = %+v, %v", src, err)
	}
	os.WriteFile(filepath.Join(root, ConfigPath), []byte(`{`), 0o644)
	if _, err := ReadImage(root); err == nil || !strings.Contains(err.Error(), ConfigPath) {
		t.Errorf("ReadImage(bad JSON) error %v; want one naming %s", err, ConfigPath)
	}
}

func TestStartError(t *testing.T) {
	err := error(&StartError{Path: "/bin/x", Code: ExitNotFound, Err: os.ErrNotExist})
	var se *StartError
	if !errors.As(err, &se) || se.Code != 127 || err.Error() != "/bin/x: file does not exist" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("StartError = %v; want /bin/x: file does not exist, 127, wrapping ErrNotExist", err)
	}
	if got := (&StartError{Code: ExitRunFailed, Err: errors.New("setup")}).Error(); got != "setup" {
		t.Errorf("StartError without path = %q; want setup", got)
	}
}

func TestTCPPorts(t *testing.T) {
	for _, tc := range []struct {
		exposed []string
		want    []int
	}{
		{nil, nil},
		{[]string{"80/tcp", "443"}, []int{80, 443}},
		{[]string{"53/udp", "9/sctp", "8080/tcp"}, []int{8080}},
		{[]string{"8000-8002/tcp", "8001"}, []int{8000, 8001, 8002}},
		{[]string{"0", "70000", "x/tcp", "9-1", "1-5000", "", "/tcp"}, nil},
	} {
		exposed := map[string]struct{}{}
		for _, p := range tc.exposed {
			exposed[p] = struct{}{}
		}
		if got := TCPPorts(exposed); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("TCPPorts(%q) = %v; want %v", tc.exposed, got, tc.want)
		}
	}
}
