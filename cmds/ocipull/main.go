// Command ocipull puts a container image into a directory that becomes a
// root filesystem, or onto a disk, from inside the machine: what ginit runs
// for a diskless boot (root=docker://REF, root=oci:URL) and for an install
// (ginit.install=DISK). Layers are checked against their digests and
// flattened with oci2disk's code; owners, modes, device nodes and xattrs are
// set for real, so it runs as root.
//
//	ocipull [-platform OS/ARCH] SOURCE DIR     pull into the empty directory DIR
//	ocipull -install DISK SOURCE               format DISK as oci2disk does and pull onto it
//
// SOURCE is docker://REF (a registry, over HTTPS with Mozilla's root
// certificates built in, or HTTP for loopback and private addresses), oci:http://HOST/PATH[:NAME] (an OCI image layout on any
// HTTP server), or any source oci2disk takes. Progress goes to standard
// output, one line a second at most; the error, when it fails, is one line
// on standard error.
//
// A private registry's CA goes beside the built-in roots as a PEM file in
// /etc/ginit/ca.d (*.pem, *.crt), put there by the image (uroot.json's
// files, or a cpio appended to the initramfs), or with -ca-cert FILE.
// Credentials come from Docker's config.json ($DOCKER_CONFIG or
// $HOME/.docker, HOME=/ at boot).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	// The image has no CA bundle of its own: Mozilla's roots, from a Go
	// module (so the build stays reproducible), for HTTPS registries. Used
	// only where the system has no roots.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/ginit-dev/ginit/internal/cmdhelp"
	"github.com/ginit-dev/ginit/internal/ociimage"
	"github.com/ginit-dev/ginit/internal/pull"
	"github.com/ginit-dev/ginit/internal/units"
)

func main() {
	err := run(os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ocipull: %v\n", err)
		os.Exit(1)
	}
}

const help = `Usage: ocipull [flags] SOURCE DIR
       ocipull -install DISK [flags] SOURCE

ocipull puts a container image into the empty directory DIR, or formats
DISK as oci2disk does and pulls the image onto it, from inside the machine:
what ginit runs for a diskless boot (root=docker://REF, root=oci:URL) and
for ginit.install=DISK. Layers are checked against their digests; owners,
modes, device nodes and xattrs are set for real, so it runs as root.

SOURCE is docker://REF (a registry: HTTPS, or HTTP for loopback and private
addresses), oci:http://HOST/PATH[:NAME] (an OCI image layout on an HTTP
server), or any source oci2disk takes. A private registry's CA is a PEM
file in /etc/ginit/ca.d or given with -ca-cert; credentials come from
Docker's config.json ($DOCKER_CONFIG or $HOME/.docker).

Examples:
  ocipull docker://alpine:3.20 /newroot
  ocipull -platform linux/arm64 docker://10.0.2.2:5000/app:1 /newroot
  ocipull oci:http://10.0.2.2:8000/layout:app /newroot
  ocipull -ca-cert /etc/my-ca.pem docker://registry.lan:5000/app:1 /newroot
  ocipull -install /dev/vda docker://debian:bookworm-slim

Flags:
`

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("ocipull", flag.ContinueOnError)
	install := fs.String("install", "", "format `DISK` and pull onto it, instead of into a directory")
	platform := fs.String("platform", ociimage.DefaultPlatform().String(), "the platform to pick from a multi-platform image (`OS/ARCH[/VARIANT]`)")
	var caCerts []string
	fs.Func("ca-cert", "also trust the CA certificates of this PEM `FILE` (repeatable)", func(s string) error {
		caCerts = append(caCerts, s)
		return nil
	})
	if err := cmdhelp.Parse(fs, args, out, help, ""); err != nil {
		return err
	}
	var source, dir string
	switch {
	case *install != "" && fs.NArg() == 1:
		source = fs.Arg(0)
	case *install == "" && fs.NArg() == 2:
		source, dir = fs.Arg(0), fs.Arg(1)
	default:
		return fmt.Errorf("want SOURCE DIR, or -install DISK SOURCE (see ocipull --help)")
	}
	plat, err := v1.ParsePlatform(*platform)
	if err != nil {
		return fmt.Errorf("-platform %q: %w", *platform, err)
	}
	boot, err := ociimage.CAFiles(ociimage.BootCADir)
	if err != nil {
		return err
	}
	cas, err := ociimage.SystemCAs(append(boot, caCerts...)...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := pull.Options{Platform: plat, Net: ociimage.Net{RootCAs: cas}, Progress: newProgress(out), Warnf: func(f string, a ...any) {
		fmt.Fprintf(out, "ocipull: warning: "+f+"\n", a...)
	}}
	var rep *pull.Report
	if *install != "" {
		fmt.Fprintf(out, "ocipull: installing %s onto %s\n", source, *install)
		rep, err = pull.Install(ctx, source, *install, o)
	} else {
		rep, err = pull.Into(ctx, source, dir, o)
	}
	if err != nil {
		return err
	}
	where := dir
	if *install != "" {
		where = *install
	}
	fmt.Fprintf(out, "ocipull: %s (%s): %d layers, %s, in %s\n", source, rep.Source.Digest, rep.Layers, units.Bytes(rep.Bytes), where)
	return nil
}
