// Command oci2disk turns a container image or a root filesystem into an
// ext4 disk image for ginit, with no Docker daemon, no loop mount and no
// root.
//
// Usage:
//
//	oci2disk [flags] SOURCE OUTPUT.img
//
// SOURCE is docker://REF (an image in a registry; a bare reference works
// too), docker-archive:PATH (`docker save` output), oci:PATH (an OCI image
// layout directory), oci-archive:PATH (the same in a tar), tar:PATH (a flat
// rootfs tar such as `docker export` writes, plain or gzip) or dir:PATH (a
// directory holding the root filesystem). PATH "-" is standard input; a
// bare "-" is an archive of any kind there. A bare path is taken for what
// it is. An image's layers are flattened in order, whiteouts and opaque
// directories applied, and its config goes to /.ginit/image.json byte for
// byte.
//
// The disk is ext4 with a journal, labelled ginit-root, sized to the content
// plus --free headroom unless --size is given, and written atomically: to
// OUTPUT.img.tmp-XXXX beside OUTPUT, synced, then renamed. The same input
// gives the same bytes: the UUID and directory hash seed derive from the
// content unless --uuid is given, and every timestamp comes from the
// content or SOURCE_DATE_EPOCH.
//
// The image configuration flags write /.ginit/image.json (the OCI image
// configuration document ginit reads). A document already in the source
// is kept when none is given, and updated field by field when some are.
// --entrypoint and --cmd take a JSON array (--cmd '["sh","-c","echo hi"]')
// or shell words without expansion (--cmd 'sh -c "echo hi"'); an empty
// value clears the field. As in a Dockerfile, --entrypoint without --cmd
// drops the existing Cmd.
//
// Ownership, modes, device nodes and xattrs of an image or tar are kept as
// they are written there, run as root or not: nothing of it needs
// privileges. The file system is written in Go, with no host tool;
// --writer=mkfs takes the older path through e2fsprogs (mkfs.ext4 -d and
// debugfs, Linux only).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ginit-dev/ginit/internal/disk"
	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/rootfs"
	"github.com/ginit-dev/ginit/internal/units"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "oci2disk: %v\n", err)
		os.Exit(1)
	}
}

const usageHead = `Usage: oci2disk [flags] SOURCE OUTPUT.img

Makes an ext4 disk image for ginit from a container image or a root
filesystem, without a Docker daemon, a loop mount or root.

SOURCE:
  docker://REF         an image in a registry (a bare REF works too); Docker's
                       credentials are used; one digest-checked pull, no daemon
  docker-archive:PATH  docker save output; PATH:TAG picks one of several images
  oci:PATH             an OCI image layout directory; PATH:NAME picks by ref.name
  oci-archive:PATH     an OCI image layout in a tar
  tar:PATH             a flat rootfs tar (docker export), plain or gzip
  dir:PATH             a directory holding the root filesystem
  -                    an archive of any kind above on standard input; also
                       docker-archive:-, oci-archive:-, tar:-

Examples:
  oci2disk docker://debian:bookworm-slim debian.img
  oci2disk --platform linux/arm64 ghcr.io/org/app:1.2 app.img
  docker save nginx | oci2disk docker-archive:- nginx.img
  oci2disk docker-archive:images.tar:myapp:latest app.img
  oci2disk oci:./layout app.img
  oci2disk oci-archive:app-oci.tar app.img
  docker export $(docker create alpine) | oci2disk --cmd '["/bin/sh"]' tar:- disk.img
  oci2disk --free 1G tar:rootfs.tar.gz disk.img
  oci2disk dir:./rootfs disk.img
  oci2disk --entrypoint /usr/bin/app --cmd '--port 80' --env MODE=prod \
           --workdir /srv --user 1000:1000 tar:app.tar disk.img

Flags:
`

const usageTail = `
An image's config is written to /.ginit/image.json byte for byte; the image
flags (--entrypoint, --cmd, --env, --workdir, --user) change it field by
field. --entrypoint and --cmd take a JSON array or shell words (no
expansion); an empty value clears the field. For a directory or tar, an
image.json already in the source is kept when no flag is given.
The same input gives the same bytes: UUID and times derive from the image
(its config and creation time) or the content. SOURCE_DATE_EPOCH, when set,
stamps the file system and clamps file mtimes.

Private registries: credentials come from Docker's config
($DOCKER_CONFIG/config.json, else ~/.docker/config.json: "auths" entries as
"docker login" writes them, and credential helpers). A registry's own CA is
added with --ca-cert FILE, beside the system's roots. SSL_CERT_FILE and
SSL_CERT_DIR, by contrast, replace the system's roots.
`

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

type optString struct {
	v   string
	set bool
}

func (o *optString) String() string     { return o.v }
func (o *optString) Set(s string) error { o.v, o.set = s, true; return nil }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("oci2disk", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse's complaints come back as errors
	var (
		label      = fs.String("label", imagespec.RootLabel, "file system `LABEL` (at most 16 bytes)")
		size       = fs.String("size", "", "total disk `SIZE` (e.g. 2G); default: content plus --free")
		free       = fs.String("free", "64M", "free space to leave when sizing automatically (`SIZE`: 64M, 1G, bytes)")
		uuid       = fs.String("uuid", "", "file system `UUID`; default: derived from the image or the content")
		tmpdir     = fs.String("tmpdir", "", "`DIR` for an archive read from standard input, and for the staging tree of --writer=mkfs; default: $TMPDIR or /tmp")
		platform   = fs.String("platform", ociimage.DefaultPlatform().String(), "platform to pick from a multi-platform image (`OS/ARCH[/VARIANT]`)")
		maxSize    = fs.String("max-size", "32G", "stop when one layer or tar unpacks to more than `SIZE` (0: no limit)")
		arch       = fs.String("arch", ociimage.DefaultPlatform().Architecture, "`ARCH` recorded in a new image.json")
		entrypoint optString
		cmd        optString
		env        stringList
		workdir    = fs.String("workdir", "", "image WorkingDir (`DIR`)")
		user       = fs.String("user", "", "image User (`USER[:GROUP]`)")
		timeout    = fs.Duration("timeout", 0, "how long a registry may stay silent: to connect, to answer, between two bytes of a layer (`DUR`); 0: 10s to connect, 30s for the rest")
		retries    = fs.Int("retries", 2, "more tries of a registry request that got no answer or a busy reply (`N`)")
		caCerts    stringList
		quiet      = fs.Bool("q", false, "quiet: print errors and warnings only; no progress")
		verbose    = fs.Bool("v", false, "verbose: also print the time each step took")
		writer     = fs.String("writer", disk.WriterGo, "how to write the file system (`WRITER`): go, in Go; mkfs, through mkfs.ext4 -d and debugfs (Linux, needs e2fsprogs)")
	)
	fs.Var(&entrypoint, "entrypoint", "image Entrypoint (`CMD`: JSON array or shell words)")
	fs.Var(&cmd, "cmd", "image Cmd (`ARGS`: JSON array or shell words)")
	fs.Var(&env, "env", "image Env entry `K=V` (repeatable)")
	fs.Var(&caCerts, "ca-cert", "also trust the CA certificates of PEM `FILE` for registries, beside the system's (repeatable)")
	fs.Usage = func() {}
	usage := func() {
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usageHead)
		fs.PrintDefaults()
		fmt.Fprint(stdout, usageTail)
	}

	// Flags may come before, between or after the two arguments.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return err
			}
			return fmt.Errorf("%w (see oci2disk --help)", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != 2 {
		return fmt.Errorf("want SOURCE and OUTPUT.img, got %d arguments (see oci2disk --help)", len(pos))
	}
	src, err := imagesrc.ParseSource(pos[0])
	if err != nil {
		return err
	}
	if *writer != disk.WriterGo && *writer != disk.WriterMkfs {
		return fmt.Errorf("--writer %q: want %s or %s", *writer, disk.WriterGo, disk.WriterMkfs)
	}
	o := disk.Options{Source: src, Output: pos[1], Label: *label, UUID: *uuid, TmpDir: *tmpdir, Stdin: stdin, Writer: *writer,
		Warnf: func(format string, a ...any) { fmt.Fprintf(stderr, "oci2disk: warning: "+format+"\n", a...) }}
	if *size != "" {
		if o.Size, err = ext4img.ParseSize(*size); err != nil {
			return fmt.Errorf("--size: %w", err)
		}
	}
	if o.Free, err = ext4img.ParseSize(*free); err != nil {
		return fmt.Errorf("--free: %w", err)
	}
	if o.MaxLayerSize, err = ext4img.ParseSize(*maxSize); err != nil {
		return fmt.Errorf("--max-size: %w", err)
	}
	if o.MaxLayerSize == 0 {
		o.MaxLayerSize = -1
	}
	if o.Net, err = netOptions(*timeout, *retries, caCerts); err != nil {
		return err
	}
	p, err := v1.ParsePlatform(*platform)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return fmt.Errorf("--platform %q: want OS/ARCH[/VARIANT], e.g. linux/arm64", *platform)
	}
	o.Platform = p
	if !*quiet {
		o.Progress = newProgress(stderr)
	}
	c := &o.Config
	c.Arch, c.WorkingDir, c.User = *arch, *workdir, *user
	if entrypoint.set {
		c.EntrypointSet = true
		if c.Entrypoint, err = imagespec.ParseCommand(entrypoint.v); err != nil {
			return fmt.Errorf("--entrypoint: %w", err)
		}
	}
	if cmd.set {
		c.CmdSet = true
		if c.Cmd, err = imagespec.ParseCommand(cmd.v); err != nil {
			return fmt.Errorf("--cmd: %w", err)
		}
	}
	for _, kv := range env {
		if err := disk.CheckEnv(kv); err != nil {
			return fmt.Errorf("--env: %w", err)
		}
	}
	c.Env = env

	rep, err := disk.Build(ctx, o)
	if errors.Is(err, rootfs.ErrTooLarge) {
		return fmt.Errorf("%w (see --max-size)", err)
	}
	if err != nil {
		return err
	}
	if !*quiet {
		cfg := "no image.json"
		if rep.ImageJSON {
			cfg = "with " + imagespec.ConfigPath
		}
		from := ""
		if rep.Image != "" {
			from = fmt.Sprintf(" from image %s (%d %s)", rep.Image, rep.Layers, plural(rep.Layers, "layer", "layers"))
		}
		fmt.Fprintf(stderr, "oci2disk: wrote %s%s: %s, %s free, label %s, UUID %s, %d inodes (%s of files), %s, in %.2fs\n",
			rep.Output, from, units.Bytes(rep.Size), units.Bytes(rep.Free), o.Label, rep.UUID,
			rep.Inodes, units.Bytes(rep.Bytes), cfg, rep.Elapsed.Seconds())
	}
	if *verbose {
		for _, p := range rep.Phases {
			fmt.Fprintf(stderr, "oci2disk: %-10s %.3fs\n", p.Name, p.Took.Seconds())
		}
	}
	return nil
}

// netOptions are the registry deadlines, retries and CAs the flags ask for.
func netOptions(timeout time.Duration, retries int, caCerts []string) (ociimage.Net, error) {
	if timeout < 0 {
		return ociimage.Net{}, fmt.Errorf("--timeout %v: want a positive duration", timeout)
	}
	if retries < 0 {
		return ociimage.Net{}, fmt.Errorf("--retries %d: want 0 or more", retries)
	}
	n := ociimage.Net{DialTimeout: timeout, TLSTimeout: timeout, HeaderTimeout: timeout, StallTimeout: timeout, Retries: retries}
	if retries == 0 {
		n.Retries = -1
	}
	if len(caCerts) > 0 {
		pool, err := ociimage.SystemCAs(caCerts...)
		if err != nil {
			return n, fmt.Errorf("--ca-cert: %w", err)
		}
		n.RootCAs = pool
	}
	return n, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
