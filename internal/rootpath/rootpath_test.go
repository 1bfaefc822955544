package rootpath

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveStaysInRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"usr/bin/app", "etc/passwd"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"bin": "usr/bin", "abs": "/usr/bin", "escape": "../../../../etc", "loop": "loop"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"/bin/app", "usr/bin/app"},
		{"/abs/app", "usr/bin/app"},
		{"/escape/passwd", "etc/passwd"},
		{"/../../etc/passwd", "etc/passwd"},
		{"/bin/missing", "usr/bin/missing"},
		{"/abs/new/dir/../x", "usr/bin/new/x"},
		{"/srv/work", "srv/work"},
	} {
		got, err := Resolve(root, tt.in)
		if want := filepath.Join(root, tt.want); err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tt.in, got, err, want)
		}
	}
	if _, err := Resolve(root, "/loop/x"); err == nil {
		t.Errorf("Resolve(/loop/x) succeeded; want a symlink loop error")
	}
}
