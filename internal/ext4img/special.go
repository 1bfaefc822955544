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

// Device is a character or block device node.
type Device struct {
	Block        bool
	Major, Minor uint32
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Special is an inode of the image that mkfs.ext4 -d could not make from an
// unprivileged staging tree: a device node (staged as an empty regular
// file, replaced here) or an inode with extended attributes.
type Special struct {
	Paths  []string // every name of the inode, absolute, the first one first
	Marker int64    // atime stamped on a node made here, for Patch to find
	Dev    *Device
	Xattrs []Xattr
}

// MakeSpecial makes the device nodes and sets the extended attributes of
// items in the image img with one debugfs run (no mount, no root). Modes,
// owners and times are left for Patch, through Marker.
func MakeSpecial(ctx context.Context, img string, items []Special, t int64) error {
	if len(items) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp("", "oci2disk-special-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var s strings.Builder
	values := 0
	for _, it := range items {
		if len(it.Paths) == 0 {
			continue
		}
		q := make([]string, len(it.Paths))
		for i, p := range it.Paths {
			if q[i], err = debugfsQuote(p); err != nil {
				return err
			}
		}
		if d := it.Dev; d != nil {
			qdir, err := debugfsQuote(path.Dir(it.Paths[0]))
			if err != nil {
				return err
			}
			qbase, err := debugfsQuote(path.Base(it.Paths[0]))
			if err != nil {
				return err
			}
			for _, p := range q {
				fmt.Fprintf(&s, "rm %s\n", p)
			}
			kind := "c"
			if d.Block {
				kind = "b"
			}
			// mknod takes a name in the current directory, and
			// numbers that fit the old encoding; larger ones go into
			// the inode as the kernel's new encoding.
			if d.Major < 256 && d.Minor < 256 {
				fmt.Fprintf(&s, "cd %s\nmknod %s %s %d %d\ncd /\n", qdir, qbase, kind, d.Major, d.Minor)
			} else {
				fmt.Fprintf(&s, "cd %s\nmknod %s %s 0 0\ncd /\n", qdir, qbase, kind)
				fmt.Fprintf(&s, "sif %s block[1] %d\n", q[0], newDevEncoding(d.Major, d.Minor))
			}
			for _, p := range q[1:] {
				fmt.Fprintf(&s, "ln %s %s\n", q[0], p)
			}
			if len(q) > 1 {
				fmt.Fprintf(&s, "sif %s links_count %d\n", q[0], len(q))
			}
			fmt.Fprintf(&s, "sif %s atime @%d\n", q[0], it.Marker)
		}
		for _, x := range it.Xattrs {
			qn, err := debugfsQuote(x.Name)
			if err != nil {
				return err
			}
			vf := fmt.Sprintf("%s/v%d", tmp, values)
			values++
			if err := os.WriteFile(vf, x.Value, 0o600); err != nil {
				return err
			}
			qv, err := debugfsQuote(vf)
			if err != nil {
				return err
			}
			fmt.Fprintf(&s, "ea_set -f %s %s %s\n", qv, q[0], qn)
		}
	}
	script := tmp + "/script"
	if err := os.WriteFile(script, []byte(s.String()), 0o600); err != nil {
		return err
	}
	return runScript(ctx, img, script, t, "making device nodes and extended attributes")
}

// runScript runs a debugfs -w script on img. debugfs exits 0 even when a
// command fails: its complaints go to stderr after the version banner.
func runScript(ctx context.Context, img, script string, t int64, what string) error {
	debugfs, err := Tool("debugfs")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, debugfs, "-w", "-f", script, img)
	cmd.Env = toolEnv("", t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("debugfs -w %s: %s: %w: %s", img, what, err, strings.TrimSpace(stderr.String()))
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, "debugfs ") {
			return fmt.Errorf("debugfs -w %s: %s: %s", img, what, line)
		}
	}
	return nil
}

// newDevEncoding is the kernel's new_encode_dev, as ext4 stores it in
// i_block[1].
func newDevEncoding(major, minor uint32) uint32 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}
