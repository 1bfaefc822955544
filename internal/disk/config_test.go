package disk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		c        Config
		existing string
		want     string
	}{
		{"new", Config{EntrypointSet: true, Entrypoint: []string{"/app"}, CmdSet: true, Cmd: []string{"-v"}, Env: []string{"A=1"}, WorkingDir: "/srv", User: "1000", Arch: "amd64"}, "",
			`{"architecture":"amd64","config":{"Cmd":["-v"],"Entrypoint":["/app"],"Env":["A=1"],"User":"1000","WorkingDir":"/srv"},"os":"linux"}`},
		{"omit empty", Config{CmdSet: true, Cmd: []string{"sh"}, Arch: "arm64"}, "",
			`{"architecture":"arm64","config":{"Cmd":["sh"]},"os":"linux"}`},
		{"merge keeps the rest", Config{Env: []string{"PATH=/x", "B=2"}, Arch: "amd64"},
			`{"architecture":"riscv64","os":"linux","config":{"Env":["PATH=/bin","A=1"],"Cmd":["sh"],"StopSignal":"SIGINT","Labels":{"a":"<b>"}},"rootfs":{"type":"layers"}}`,
			`{"architecture":"riscv64","config":{"Cmd":["sh"],"Env":["PATH=/x","A=1","B=2"],"Labels":{"a":"<b>"},"StopSignal":"SIGINT"},"os":"linux","rootfs":{"type":"layers"}}`},
		{"entrypoint drops cmd", Config{EntrypointSet: true, Entrypoint: []string{"/init"}},
			`{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/old"],"Cmd":["x"]}}`,
			`{"architecture":"amd64","config":{"Entrypoint":["/init"]},"os":"linux"}`},
		{"empty clears", Config{EntrypointSet: true, CmdSet: true, Cmd: []string{"a"}},
			`{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/old"],"Cmd":["x"]}}`,
			`{"architecture":"amd64","config":{"Cmd":["a"]},"os":"linux"}`},
	} {
		got, err := tc.c.Apply([]byte(tc.existing))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: Apply = %s, %v; want %s", tc.name, got, err, tc.want)
		}
	}
	if _, err := (&Config{User: "x"}).Apply([]byte("{not json")); err == nil {
		t.Errorf("Apply on a broken document: want an error")
	}
}

func TestParseSource(t *testing.T) {
	dir := t.TempDir()
	layout := t.TempDir()
	os.WriteFile(filepath.Join(layout, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	file := filepath.Join(dir, "x.tar")
	os.WriteFile(file, nil, 0o644)
	for in, want := range map[string]Source{
		"dir:/x": {"dir", "/x"}, "tar:a.tar": {"tar", "a.tar"}, "tar:-": {"tar", "-"}, "-": {"archive", "-"}, dir: {"dir", dir},
		layout: {"oci", layout}, file: {"archive", file},
		"docker://alpine:3.20": {"docker", "alpine:3.20"}, "localhost:5000/app@sha256:" + strings.Repeat("a", 64): {"docker", "localhost:5000/app@sha256:" + strings.Repeat("a", 64)},
		"registry.example/app:1": {"docker", "registry.example/app:1"},
		"docker-archive:-":       {"docker-archive", "-"}, "docker-archive:a.tar:app:1": {"docker-archive", "a.tar:app:1"},
		"oci:/l:v1": {"oci", "/l:v1"}, "oci-archive:/l.tar": {"oci-archive", "/l.tar"},
	} {
		if got, err := ParseSource(in); err != nil || got != want {
			t.Errorf("ParseSource(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"dir:", "dir:-", "/no/such/path", "./rootfs", "missing.tar", "docker://UPPER/Case", "Not A Ref"} {
		if got, err := ParseSource(in); err == nil {
			t.Errorf("ParseSource(%q) = %v; want an error", in, got)
		}
	}
}
