package blockdev

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ginit-dev/ginit/internal/ext4fs/e2fstest"
)

// A real ext4 made by mkfs.ext4 is found by its label and UUID.
func TestFindByLabelAndUUID(t *testing.T) {
	mkfs := e2fstest.Tool(t, "mkfs.ext4")
	dir := t.TempDir()
	sys, dev := filepath.Join(dir, "sys"), filepath.Join(dir, "dev")
	for _, d := range []string{filepath.Join(sys, "vda"), filepath.Join(sys, "vdb"), dev} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dev, "vda"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dev, "vdb")
	const uuid = "0b0e5b2c-1f57-4d5e-9a7e-3c2b7f1d8e11"
	out, err := exec.Command(mkfs, "-q", "-F", "-L", "ginit-root", "-U", uuid, img, "8M").CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	for _, spec := range []Spec{{Label: "ginit-root"}, {UUID: uuid}} {
		path, s, err := Find(sys, dev, spec)
		if err != nil || path != img || s.Type != "ext4" || s.Label != "ginit-root" || s.UUID != uuid {
			t.Errorf("Find(%v) = %q, %+v, %v; want %s, ext4, ginit-root, %s", spec, path, s, err, img, uuid)
		}
	}
	if _, _, err := Find(sys, dev, Spec{Label: "other"}); !os.IsNotExist(err) {
		t.Errorf("Find(LABEL=other) error = %v; want not-exist", err)
	}
}

func TestParseSpec(t *testing.T) {
	for in, want := range map[string]Spec{
		"/dev/vda":     {Path: "/dev/vda"},
		"LABEL=root":   {Label: "root"},
		"UUID=ABCD-12": {UUID: "abcd-12"},
	} {
		if got, err := ParseSpec(in); err != nil || got != want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"vda", "sda1", ""} {
		if _, err := ParseSpec(bad); err == nil {
			t.Errorf("ParseSpec(%q) succeeded; want an error", bad)
		}
	}
}

func FuzzParseSuper(f *testing.F) {
	f.Add(make([]byte, 2048))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseSuper(b)
	})
}

// ParseSuper names ext2, ext3 and ext4 as mke2fs makes them.
func TestParseSuperTypes(t *testing.T) {
	mke2fs := e2fstest.Tool(t, "mke2fs")
	for _, typ := range []string{"ext2", "ext3", "ext4"} {
		img := filepath.Join(t.TempDir(), typ+".img")
		out, err := exec.Command(mke2fs, "-q", "-F", "-t", typ, "-L", "l-"+typ, img, "8M").CombinedOutput()
		if err != nil {
			t.Fatalf("mke2fs -t %s: %v\n%s", typ, err, out)
		}
		s, err := Probe(img)
		if err != nil || s.Type != typ || s.Label != "l-"+typ || len(s.UUID) != 36 {
			t.Errorf("Probe(mke2fs -t %s) = %+v, %v; want type %s, label l-%s, a UUID", typ, s, err, typ, typ)
		}
	}
	if _, err := ParseSuper(make([]byte, 2048)); !errors.Is(err, ErrUnknownFS) {
		t.Errorf("ParseSuper(zeros) = %v; want %v", err, ErrUnknownFS)
	}
}
