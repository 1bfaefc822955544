package ext4img

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
)

// File is one file to put into an existing image, owned by root.
type File struct {
	Path      string // absolute path in the image, e.g. /.ginit/image.json
	Data      []byte
	Perm      uint32 // e.g. 0o644
	Time      int64  // all four timestamps, of the file and a created parent
	MakeDir   bool   // create the parent directory (0755)
	Overwrite bool   // remove an existing file first
}

// debugfsQuote quotes an argument for debugfs's command parser.
func debugfsQuote(s string) (string, error) {
	if strings.ContainsAny(s, "\"\n") {
		return "", fmt.Errorf("path %q: quotes and newlines are not supported", s)
	}
	return `"` + s + `"`, nil
}

// WriteFile puts f into the image img with debugfs (no mount, no root) and
// reads it back to check.
func WriteFile(ctx context.Context, img string, f File) error {
	tmp, err := os.MkdirTemp("", "oci2disk-debugfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := tmp + "/data"
	if err := os.WriteFile(src, f.Data, 0o600); err != nil {
		return err
	}
	qsrc, err := debugfsQuote(src)
	if err != nil {
		return err
	}
	qdst, err := debugfsQuote(f.Path)
	if err != nil {
		return err
	}
	qdir, err := debugfsQuote(path.Dir(f.Path))
	if err != nil {
		return err
	}
	var s strings.Builder
	stamp := func(q string, mode uint32) {
		fmt.Fprintf(&s, "sif %s mode 0%o\nsif %s uid 0\nsif %s gid 0\n", q, mode, q, q)
		for _, field := range []string{"atime", "ctime", "mtime", "crtime"} {
			fmt.Fprintf(&s, "sif %s %s @%d\n", q, field, f.Time)
		}
	}
	if f.MakeDir {
		fmt.Fprintf(&s, "mkdir %s\n", qdir)
		stamp(qdir, 0o40755)
	}
	if f.Overwrite {
		fmt.Fprintf(&s, "rm %s\n", qdst)
	}
	fmt.Fprintf(&s, "write %s %s\n", qsrc, qdst)
	stamp(qdst, 0o100000|f.Perm&0o7777)
	script := tmp + "/script"
	if err := os.WriteFile(script, []byte(s.String()), 0o600); err != nil {
		return err
	}
	if err := runScript(ctx, img, script, f.Time, "writing "+f.Path); err != nil {
		return err
	}
	got, err := ReadFile(ctx, img, f.Path)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, f.Data) {
		return fmt.Errorf("%s: %s reads back %d bytes different from the %d written", img, f.Path, len(got), len(f.Data))
	}
	return nil
}

// ReadFile reads a file of the image with debugfs.
func ReadFile(ctx context.Context, img, p string) ([]byte, error) {
	q, err := debugfsQuote(p)
	if err != nil {
		return nil, err
	}
	return Debugfs(ctx, img, "cat "+q)
}

// Debugfs runs one read-only debugfs request against img and returns its
// standard output; anything on stderr past the banner is an error.
func Debugfs(ctx context.Context, img, request string) ([]byte, error) {
	debugfs, err := Tool("debugfs")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, debugfs, "-R", request, img)
	cmd.Env = toolEnv("", 1)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("debugfs -R %q %s: %w: %s", request, img, err, strings.TrimSpace(stderr.String()))
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, "debugfs ") {
			return nil, fmt.Errorf("debugfs -R %q %s: %s", request, img, line)
		}
	}
	return stdout.Bytes(), nil
}
