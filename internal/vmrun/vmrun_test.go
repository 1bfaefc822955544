package vmrun

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDocument(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# secrets\n\nTOKEN=from-file\nMODE=file\nFROMSHELL\n  SPACED=a b \"c\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := ""
	o := Options{
		Cmd: []string{"serve", "--port", "80"}, Entrypoint: &empty,
		Env: []string{"MODE=flag", "FROMSHELL2", "UNSET"}, EnvFiles: []string{envFile},
		Workdir: "/srv", User: "app", Hostname: "web-1",
		Getenv: func(k string) (string, bool) {
			v, ok := map[string]string{"FROMSHELL": "s1", "FROMSHELL2": "s2"}[k]
			return v, ok
		},
	}
	doc, err := Document(o)
	if err != nil {
		t.Fatalf("Document = %v", err)
	}
	wantEnv := []string{"TOKEN=from-file", "MODE=file", "FROMSHELL=s1", `SPACED=a b "c"`, "MODE=flag", "FROMSHELL2=s2"}
	if !reflect.DeepEqual(doc.Env, wantEnv) {
		t.Errorf("Env = %q; want %q", doc.Env, wantEnv)
	}
	if doc.Entrypoint == nil || len(*doc.Entrypoint) != 0 {
		t.Errorf("Entrypoint = %v; want [] for --entrypoint \"\"", doc.Entrypoint)
	}
	if doc.Cmd == nil || !reflect.DeepEqual(*doc.Cmd, o.Cmd) || doc.Workdir != "/srv" || doc.User != "app" || doc.Hostname != "web-1" {
		t.Errorf("Document = %+v; want cmd, workdir, user and hostname from the options", doc)
	}
	entry := "/bin/sh"
	doc, err = Document(Options{Entrypoint: &entry})
	if err != nil || doc.Entrypoint == nil || !reflect.DeepEqual(*doc.Entrypoint, []string{"/bin/sh"}) || doc.Cmd != nil {
		t.Errorf("Document(--entrypoint /bin/sh) = %+v, %v; want entrypoint [/bin/sh], no cmd", doc, err)
	}
}

func TestDocumentErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("OK=1\n=nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{EnvFiles: []string{bad}}, bad + ":2: want NAME=VALUE or NAME"},
		{Options{EnvFiles: []string{filepath.Join(dir, "missing")}}, "--env-file: open"},
		{Options{Workdir: "relative"}, `field "workdir": want an absolute path`},
		{Options{Env: []string{"=x"}}, `field "env"[0]`},
	} {
		if _, err := Document(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Document(%+v) = %v; want an error with %q", tc.o, err, tc.want)
		}
	}
}

// Values given with -e travel in the document file, never in QEMU's argv.
func TestVMKeepsValuesOffArgv(t *testing.T) {
	o := Options{Kernel: "k", Initrd: "i", Append: "ginit.debug", Env: []string{"TOKEN=s3cret"}}
	args := strings.Join(vm(o, State("/state").VM("x")).Args(), " ")
	if strings.Contains(args, "s3cret") {
		t.Errorf("QEMU argv %q holds a value", args)
	}
	for _, want := range []string{"-fw_cfg name=opt/ginit/run,file=/state/vms/x/run.json", "file=/state/vms/x/disk.img", "loglevel=3 ginit.debug"} {
		if !strings.Contains(args, want) {
			t.Errorf("QEMU argv %q; want %q", args, want)
		}
	}
}

func TestRunBadInputLeavesNothing(t *testing.T) {
	state := State(t.TempDir())
	for _, o := range []Options{
		{Image: "dir:" + t.TempDir(), Kernel: filepath.Join(t.TempDir(), "no-kernel"), Initrd: filepath.Join(t.TempDir(), "no-initrd"), State: state},
		{Image: "nosuchkind:x y", Kernel: "k", Initrd: "i", State: state},
		{Image: "dir:/nonexistent", Workdir: "rel", State: state},
	} {
		if st, err := Run(t.Context(), o); st != ExitFailed || err == nil {
			t.Errorf("Run(%+v) = %d, %v; want %d and an error", o, st, err, ExitFailed)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(state.VMs(), "*")); len(left) > 0 {
		t.Errorf("failed runs left %v", left)
	}
}
