package disk

import (
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
