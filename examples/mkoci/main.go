// Command mkoci packs a directory as a one-layer OCI image in an OCI image
// layout, without Docker: what `make demo` and the nginx example use to
// turn a root filesystem into an image that oci2disk then reads with
// oci:LAYOUT. The same directory and flags give the same image digest.
//
//	mkoci [flags] DIR LAYOUT
//
// Owners, modes, hard links, device nodes and xattrs are taken from the
// files as they are (--owner forces one owner, for a tree built without
// root). Times are clamped to SOURCE_DATE_EPOCH when it is set, which is
// also the image's creation time (else the epoch).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/disk"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/ociimage"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "mkoci: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkoci", flag.ContinueOnError)
	var env, expose, labels list
	entrypoint := fs.String("entrypoint", "", "Entrypoint (JSON array or shell words)")
	cmd := fs.String("cmd", "", "Cmd (JSON array or shell words)")
	workdir := fs.String("workdir", "", "WorkingDir")
	user := fs.String("user", "", "User")
	stop := fs.String("stop-signal", "", "StopSignal")
	name := fs.String("name", "latest", "org.opencontainers.image.ref.name of the image in the layout")
	owner := fs.String("owner", "", "UID:GID owning every file (default: the files' owners)")
	comp := fs.String("compression", "gzip", "layer compression: gzip, zstd or none")
	fs.Var(&env, "env", "Env entry K=V (repeatable)")
	fs.Var(&expose, "expose", "ExposedPorts entry, e.g. 8080/tcp (repeatable)")
	fs.Var(&labels, "label", "Labels entry K=V (repeatable)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mkoci [flags] DIR LAYOUT\n\nPacks DIR as a one-layer OCI image into the OCI image layout LAYOUT.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("want DIR and LAYOUT, got %d arguments", fs.NArg())
	}
	dir, layout := fs.Arg(0), fs.Arg(1)

	var cfg v1.Config
	var err error
	if *entrypoint != "" {
		if cfg.Entrypoint, err = imagespec.ParseCommand(*entrypoint); err != nil {
			return fmt.Errorf("--entrypoint: %w", err)
		}
	}
	if *cmd != "" {
		if cfg.Cmd, err = imagespec.ParseCommand(*cmd); err != nil {
			return fmt.Errorf("--cmd: %w", err)
		}
	}
	for _, kv := range env {
		if err := disk.CheckEnv(kv); err != nil {
			return fmt.Errorf("--env: %w", err)
		}
	}
	cfg.Env, cfg.WorkingDir, cfg.User, cfg.StopSignal = env, *workdir, *user, *stop
	for _, p := range expose {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	for _, kv := range labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("--label %q: want K=V", kv)
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[k] = v
	}

	var topt ociimage.TarOptions
	if *owner != "" {
		u, g, ok := strings.Cut(*owner, ":")
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("--owner %q: want UID:GID", *owner)
		}
		topt.Owner = &[2]int{uid, gid}
	}
	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds", s)
		}
		created = time.Unix(sec, 0).UTC()
		topt.Clamp = &created
	}

	// The layer tar is written once to a temporary file beside the
	// layout, then compressed into the layout.
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(layout)), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(filepath.Clean(layout)), ".mkoci-layer-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := ociimage.TarDir(tmp, dir, topt); err != nil {
		tmp.Close()
		return fmt.Errorf("packing %s: %w", dir, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	open := func() (io.ReadCloser, error) { return os.Open(tmp.Name()) }
	img, err := ociimage.NewImage([]tarball.Opener{open}, ociimage.Spec{Config: cfg, Created: created, Compression: *comp, History: "mkoci " + filepath.Base(dir)})
	if err != nil {
		return err
	}
	if err := ociimage.WriteLayout(layout, img, *name); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mkoci: %s:%s is %s\n", layout, *name, d)
	return nil
}
