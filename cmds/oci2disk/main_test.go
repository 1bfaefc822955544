package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/ext4img"
)

func TestHelpListsEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--help"}, nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(--help) = %v; want flag.ErrHelp", err)
	}
	help := stdout.String()
	for _, want := range []string{"-label", "-size", "-free", "-uuid", "-tmpdir", "-arch", "-entrypoint", "-cmd", "-env", "-workdir", "-user", "-q",
		"oci2disk dir:", "tar:rootfs.tar.gz", "tar:-"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %q:\n%s", want, help)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("--help wrote to stderr: %q", stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"dir:/"},
		{"--bogus", "dir:/", "x.img"},
		{"--free", "lots", "dir:/", "x.img"},
		{"--cmd", `["unterminated`, "dir:/", "x.img"},
		{"--env", "NOEQUALS", "dir:/", "x.img"},
		{"dir:/", "x.img", "extra"},
	} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, nil, &out, &errb); err == nil {
			t.Errorf("run(%q) succeeded; want an error", args)
		}
	}
}

func TestRun(t *testing.T) {
	if _, err := ext4img.Tool("mkfs.ext4"); err != nil {
		t.Skipf("skipping: %v", err)
	}
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "hello"), []byte("hi"), 0o644)
	out := filepath.Join(t.TempDir(), "disk.img")
	var stdout, stderr bytes.Buffer
	// Flags after the arguments work too.
	args := []string{"dir:" + src, out, "--free", "4M", "--cmd", "sh -c 'echo hi'", "--env", "A=1", "--env", "B=2", "-q"}
	if err := run(context.Background(), args, nil, &stdout, &stderr); err != nil {
		t.Fatalf("run(%q) = %v", args, err)
	}
	if stdout.Len()+stderr.Len() != 0 {
		t.Errorf("-q printed %q %q", stdout.String(), stderr.String())
	}
	b, err := ext4img.ReadFile(context.Background(), out, "/.ginit/image.json")
	const want = `{"architecture":"amd64","config":{"Cmd":["sh","-c","echo hi"],"Env":["A=1","B=2"]},"os":"linux"}`
	if err != nil || (string(b) != want && !strings.Contains(string(b), `"Cmd":["sh","-c","echo hi"],"Env":["A=1","B=2"]`)) {
		t.Errorf("image.json = %s, %v; want %s", b, err, want)
	}
}
