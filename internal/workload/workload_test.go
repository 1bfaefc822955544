package workload

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ginit-dev/ginit/internal/imagespec"
)

func mkroot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "etc", "home/app", "data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/bin/app", "#!/bin/sh\n", 0o755)
	write("usr/bin/noexec", "data", 0o644)
	write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n", 0o644)
	write("etc/group", "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nvideo:x:44:app\n", 0o644)
	for link, target := range map[string]string{"bin": "usr/bin", "abs": "/usr/bin", "escape": "../../../../etc", "loop": "loop"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLookPathExitCodes(t *testing.T) {
	root := mkroot(t)
	env := []string{"PATH=/bin:/usr/bin"}
	if got, err := LookPath(root, "app", env, "/"); err != nil || got != "/bin/app" {
		t.Errorf("LookPath(app) = %q, %v; want /bin/app", got, err)
	}
	for _, tt := range []struct {
		name string
		code int
	}{
		{"missing", imagespec.ExitNotFound},
		{"/usr/bin/missing", imagespec.ExitNotFound},
		{"/usr/bin/noexec", imagespec.ExitNotExecutable},
		{"noexec", imagespec.ExitNotExecutable},
		{"/data", imagespec.ExitNotExecutable},
	} {
		_, err := LookPath(root, tt.name, env, "/")
		var se *imagespec.StartError
		if !errors.As(err, &se) || se.Code != tt.code {
			t.Errorf("LookPath(%q) error = %v; want exit code %d", tt.name, err, tt.code)
		}
	}
}

func TestResolveUser(t *testing.T) {
	root := mkroot(t)
	for _, tt := range []struct {
		user string
		want Credential
	}{
		{"", Credential{Home: "/root"}},
		{"app", Credential{UID: 1000, GID: 1000, Groups: []uint32{50, 44}, Home: "/home/app"}},
		{"1000", Credential{UID: 1000, GID: 1000, Groups: []uint32{50, 44}, Home: "/home/app"}},
		{"app:staff", Credential{UID: 1000, GID: 50, Groups: []uint32{44}, Home: "/home/app"}},
		{"1000:44", Credential{UID: 1000, GID: 44, Groups: []uint32{50}, Home: "/home/app"}},
		{"4242", Credential{UID: 4242, GID: 0, Home: "/"}},
		{"4242:4343", Credential{UID: 4242, GID: 4343, Home: "/"}},
	} {
		got, err := ResolveUser(root, tt.user)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ResolveUser(%q) = %+v, %v; want %+v", tt.user, got, err, tt.want)
		}
	}
	for _, bad := range []string{"nobody-here", "app:nogroup"} {
		if _, err := ResolveUser(root, bad); err == nil {
			t.Errorf("ResolveUser(%q) succeeded; want an error naming it", bad)
		}
	}
}
