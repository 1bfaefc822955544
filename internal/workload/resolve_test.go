package workload

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ginit-dev/ginit/internal/imagespec"
)

// Resolve gives HOME from the user and TERM=linux unless the image sets
// them, makes a missing working directory, and names a missing command
// with the shell's 127.
func TestResolve(t *testing.T) {
	root := t.TempDir()
	for rel, data := range map[string]string{
		".ginit/image.json": `{"config":{"Entrypoint":["app"],"Env":["PATH=/bin"],"WorkingDir":"/srv/data","User":"app"}}`,
		"etc/passwd":        "root:x:0:0::/root:/bin/sh\napp:x:100:101::/home/app:/bin/sh\n",
		"etc/group":         "app:x:101:\n",
		"bin/app":           "#!/bin/sh\n",
	} {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Resolve(root)
	if err != nil {
		t.Fatalf("Resolve() error %v", err)
	}
	if want := []string{"PATH=/bin", "HOME=/home/app", "TERM=linux"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("Resolve().Env = %q; want %q", p.Env, want)
	}
	if p.Argv0 != "/bin/app" || p.Cred.UID != 100 || p.Cred.GID != 101 || p.WorkingDir != "/srv/data" {
		t.Errorf("Resolve() = argv0 %q uid %d gid %d dir %q; want /bin/app 100 101 /srv/data", p.Argv0, p.Cred.UID, p.Cred.GID, p.WorkingDir)
	}
	if fi, err := os.Stat(filepath.Join(root, "srv/data")); err != nil || !fi.IsDir() {
		t.Errorf("working directory not made: %v", err)
	}

	if p, err := Resolve(root, imagespec.Override{Env: []string{"TERM=xterm", "HOME=/x"}}); err != nil {
		t.Errorf("Resolve(TERM, HOME given) error %v", err)
	} else if want := []string{"PATH=/bin", "TERM=xterm", "HOME=/x"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("Resolve(TERM, HOME given).Env = %q; want %q", p.Env, want)
	}

	var se *imagespec.StartError
	if _, err := Resolve(root, imagespec.Override{Entrypoint: []string{"/bin/nosuch"}, HasEntrypoint: true}); !errors.As(err, &se) || se.Code != imagespec.ExitNotFound {
		t.Errorf("Resolve(missing command) error = %v; want a StartError with %d", err, imagespec.ExitNotFound)
	}
}
