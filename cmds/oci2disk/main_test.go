package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/testenv"
)

func TestHelpListsEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--help"}, nil, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(--help) = %v; want flag.ErrHelp", err)
	}
	help := stdout.String()
	for _, want := range []string{"-label", "-size", "-free", "-uuid", "-tmpdir", "-arch", "-entrypoint", "-cmd", "-env", "-workdir", "-user", "-q", "-v",
		"-platform", "-max-size", "SOURCE_DATE_EPOCH",
		"oci2disk docker://", "docker save nginx | oci2disk docker-archive:- ", "oci2disk docker-archive:images.tar:", "oci2disk oci:", "oci2disk oci-archive:",
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
	disktest.NeedTools(t)
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

// The built binary, run as nobody, pulls an image from a registry on
// loopback and makes the same bytes as a run as root; without a terminal
// it prints plain progress lines.
func TestBinaryAsNobody(t *testing.T) {
	disktest.NeedTools(t)
	testenv.NeedRoot(t, "runs the binary as another user (unprivileged runs have TestRunImage)")
	base, err := os.MkdirTemp("", "oci2disk-cli-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	home := filepath.Join(base, "home")
	os.Mkdir(home, 0o755)
	os.Chown(home, 65534, 65534)
	bin := filepath.Join(base, "oci2disk")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	img := disktest.FeatureImage(t)
	ref := "docker://" + disktest.Push(t, disktest.Registry(t, nil), "feature:v1", img)

	asNobody := filepath.Join(home, "nobody.img")
	cmd := exec.Command(bin, ref, asNobody)
	cmd.Env = []string{"HOME=" + home, "TMPDIR=" + home, "PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("oci2disk as nobody: %v\n%s", err, stderr.String())
	}
	t.Logf("oci2disk as nobody:\n%s", stderr.String())
	for _, re := range []string{`(?m)^oci2disk: layer 1 \(sha256:[0-9a-f]{12}\) of 3: [0-9.]+ [KM]iB in [0-9.]+s$`,
		`(?m)^oci2disk: writing the file system: `, `(?m)^oci2disk: wrote .*nobody.img from image sha256:[0-9a-f]{64} \(3 layers\)`} {
		if !regexp.MustCompile(re).MatchString(stderr.String()) {
			t.Errorf("stderr does not match %q", re)
		}
	}
	if fi, err := os.Stat(asNobody); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Fatalf("%s: %v; want a file owned by nobody", asNobody, err)
	}
	disktest.CheckFeatureDisk(t, asNobody, mustRaw(t, img))

	asRoot := filepath.Join(base, "root.img")
	if err := run(context.Background(), []string{"-q", ref, asRoot}, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if a, b := sha(t, asNobody), sha(t, asRoot); a != b {
		t.Errorf("as nobody sha256 %x, as root %x; want the same bytes", a, b)
	} else {
		t.Logf("as nobody and as root: sha256 %x", a)
	}
}

func mustRaw(t *testing.T, img interface{ RawConfigFile() ([]byte, error) }) []byte {
	b, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// Errors for bad input are one clear line each.
func TestRunErrors(t *testing.T) {
	disktest.NeedTools(t)
	host := disktest.Registry(t, nil)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"docker://" + host + "/missing:v1", "x.img"}, "missing:v1: GET"},
		{[]string{"oci:" + dir, "x.img"}, "not an OCI image layout"},
		{[]string{"docker-archive:" + filepath.Join(dir, "none.tar"), "x.img"}, "no such file"},
		{[]string{"--platform", "linux", "dir:" + dir, "x.img"}, "--platform"},
		{[]string{"--max-size", "huge", "dir:" + dir, "x.img"}, "--max-size"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(tc.args[:len(tc.args)-1:len(tc.args)-1], filepath.Join(dir, tc.args[len(tc.args)-1])), nil, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("run(%q) = %v; want one line holding %q", tc.args, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "x.img")); err == nil {
			t.Errorf("run(%q) left x.img", tc.args)
		}
	}
}

// A private registry (HTTPS with its own CA, basic auth): Docker's config
// gives the login and --ca-cert the CA. Without the CA, and against a
// registry that accepts and never answers, the run ends in one line.
func TestPrivateRegistry(t *testing.T) {
	disktest.NeedTools(t)
	p := disktest.NewPrivateRegistry(t)
	ref := "docker://" + p.TLSHost + "/private/app:1"
	img := disktest.FeatureImage(t)
	disktest.Push(t, p.Host, "private/app:1", img)
	t.Setenv("DOCKER_CONFIG", p.DockerConfig(t))
	dir := t.TempDir()

	out := filepath.Join(dir, "private.img")
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"--ca-cert", p.CAFile, ref, out}, nil, io.Discard, &stderr); err != nil {
		t.Fatalf("oci2disk --ca-cert %s %s = %v; want the disk\n%s", p.CAFile, ref, err, stderr.String())
	}
	disktest.CheckFeatureDisk(t, out, mustRaw(t, img))

	silent := disktest.SilentListener(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{ref}, "x509: certificate signed by unknown authority (add the registry's CA: oci2disk --ca-cert FILE"},
		{[]string{"--ca-cert", filepath.Join(dir, "none.pem"), ref}, "--ca-cert: CA certificate: open "},
		{[]string{"--ca-cert", "/etc/hostname", ref}, "no PEM CERTIFICATE block"},
		{[]string{"--timeout", "300ms", "--retries", "1", "docker://" + silent + "/app:1"}, `Get "http://` + silent + `/v2/": connected, but no answer within 300ms (tried 2 times)`},
	} {
		start := time.Now()
		var stderr bytes.Buffer
		err := run(context.Background(), append(tc.args, filepath.Join(dir, "x.img")), nil, io.Discard, &stderr)
		printed := stderr.String()
		if err != nil {
			printed += fmt.Sprintf("oci2disk: %v\n", err) // as main prints it
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(printed, "\n") != 1 || strings.HasSuffix(printed, " \n") {
			t.Errorf("oci2disk %q printed %q; want one line holding %q", tc.args, printed, tc.want)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("oci2disk %q took %v; want a few seconds at most", tc.args, took)
		}
	}
}

// oci2disk needs no host tool and builds for macOS.
func TestBuildsForMacOS(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the command twice")
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		testenv.Missing(t, "needs the go tool at %s", goTool)
	}
	for _, arch := range []string{"arm64"} {
		cmd := exec.Command(goTool, "build", "-o", filepath.Join(t.TempDir(), "oci2disk"), ".")
		cmd.Env = append(os.Environ(), "GOOS=darwin", "GOARCH="+arch, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=darwin GOARCH=%s go build ./cmds/oci2disk: %v\n%s", arch, err, out)
		}
	}
}
