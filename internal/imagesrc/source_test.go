package imagesrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
