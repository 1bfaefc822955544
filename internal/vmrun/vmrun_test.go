package vmrun

import (
	"fmt"
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

// Values given with -e travel in the document file, never in QEMU's argv;
// the VM's files are named relative to its directory, where QEMU runs.
func TestMachineKeepsValuesOffArgv(t *testing.T) {
	o := Options{Kernel: "/k", Initrd: "/i", Append: "ginit.debug", Env: []string{"TOKEN=s3cret"}}
	args := strings.Join(machine(o).Args(), " ")
	if strings.Contains(args, "s3cret") {
		t.Errorf("QEMU argv %q holds a value", args)
	}
	for _, want := range []string{
		"-fw_cfg name=opt/ginit/run,file=run.json", "file=disk.qcow2,if=none,id=root,format=qcow2", "loglevel=3 ginit.debug",
		"-chardev socket,id=con,path=console.sock,server=on,wait=off,logfile=console.log,logappend=on -serial chardev:con",
		"-qmp unix:qmp.sock,server=on,wait=off",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("QEMU argv %q; want %q", args, want)
		}
	}
}

// fakeTools puts stand-ins for QEMU's programs, as named, in a directory
// that becomes the whole PATH.
func fakeTools(t *testing.T, names ...string) {
	bin := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
}

// Bad input gives one error naming what was wrong, and leaves no VM, no
// overlay and no base behind.
func TestCreateBadInputLeavesNothing(t *testing.T) {
	files := t.TempDir()
	kernel, initrd := filepath.Join(files, "vmlinuz"), filepath.Join(files, "initrd")
	for _, f := range []string{kernel, initrd} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	for _, tc := range []struct {
		name  string
		tools []string
		o     Options
		want  string
	}{
		{"no kernel", []string{QEMUSystem, QEMUImg}, Options{Image: "dir:" + root, Kernel: filepath.Join(files, "no-kernel"), Initrd: initrd}, "no-kernel: no such file"},
		{"no initramfs", []string{QEMUSystem, QEMUImg}, Options{Image: "dir:" + root, Kernel: kernel, Initrd: filepath.Join(files, "no-initrd")}, "no-initrd: no such file"},
		{"no qemu", []string{QEMUImg}, Options{Image: "dir:" + root, Kernel: kernel, Initrd: initrd}, "qemu-system-x86_64 not found on PATH"},
		{"no qemu-img", []string{QEMUSystem}, Options{Image: "dir:" + root, Kernel: kernel, Initrd: initrd}, "qemu-img not found on PATH"},
		{"no image", []string{QEMUSystem, QEMUImg}, Options{Image: "dir:" + filepath.Join(files, "missing"), Kernel: kernel, Initrd: initrd}, "missing: no such file"},
		{"no archive", []string{QEMUSystem, QEMUImg}, Options{Image: "docker-archive:" + filepath.Join(files, "none.tar"), Kernel: kernel, Initrd: initrd}, "image: docker-archive:" + filepath.Join(files, "none.tar") + ": stat"},
		{"bad source", nil, Options{Image: "nosuchkind:x y", Kernel: kernel, Initrd: initrd}, `source "nosuchkind:x y"`},
		{"bad workdir", nil, Options{Image: "dir:" + root, Workdir: "rel"}, "workdir"},
		{"bad name", []string{QEMUSystem, QEMUImg}, Options{Image: "dir:" + root, Kernel: kernel, Initrd: initrd, Name: "-x"}, `VM name "-x"`},
		{"name taken", []string{QEMUSystem, QEMUImg}, Options{Image: "dir:" + root, Kernel: kernel, Initrd: initrd, Name: "taken"}, `VM "taken": name already in use`},
		{"stdin", []string{QEMUSystem, QEMUImg}, Options{Image: "oci-archive:-", Kernel: kernel, Initrd: initrd}, "standard input cannot be cached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fakeTools(t, tc.tools...)
			state := State(t.TempDir())
			taken := state.VM("taken")
			if err := os.MkdirAll(string(taken), 0o700); err != nil {
				t.Fatal(err)
			}
			tc.o.State = state
			dir, err := Create(t.Context(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Create = %q, %v; want an error with %q", dir, err, tc.want)
			}
			if strings.Count(fmt.Sprint(err), "\n") > 0 {
				t.Errorf("Create error %q: want one line", err)
			}
			left, _ := filepath.Glob(filepath.Join(string(state), "*", "*"))
			if len(left) != 1 || left[0] != string(taken) {
				t.Errorf("a failed Create left %v; want only %s", left, taken)
			}
		})
	}
}
