package integration

import (
	"archive/tar"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ginit-dev/ginit/internal/disk/disktest"
	"github.com/ginit-dev/ginit/internal/ociimage"
)

// An image pulled from a registry, whose config sets Entrypoint, Cmd, Env,
// WorkingDir and User, boots, and its workload runs the way Docker would
// have run it: as the user with its groups, in the directory, with the
// environment, the Cmd appended to the Entrypoint.
func TestImageConfigBoots(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	work := t.TempDir()
	a.BuildProbe(t, work)
	probe, err := os.ReadFile(filepath.Join(work, "probe"))
	if err != nil {
		t.Fatal(err)
	}
	file := func(name, body string, mode int64) disktest.Entry {
		return disktest.Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, Body: body}
	}
	base := disktest.Tar(t,
		file("app/probe", string(probe), 0o755),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n", 0o644),
		file("etc/group", "root:x:0:\napp:x:1000:\nextra:x:2000:app\n", 0o644),
		file("etc/obsolete", "removed by the next layer", 0o644),
	)
	top := disktest.Tar(t,
		file("etc/.wh.obsolete", "", 0o644),
		disktest.Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: "srv/work/", Mode: 0o750, Uid: 1000, Gid: 1000}},
	)
	img, err := ociimage.NewImage([]tarball.Opener{disktest.Opener(base), disktest.Opener(top)}, ociimage.Spec{Config: v1.Config{
		Entrypoint: []string{"/app/probe"},
		Cmd:        []string{"env"},
		Env:        []string{"PATH=/app:/usr/bin:/bin", "GREETING=hello from the image", "WITH_SPACE=a b"},
		WorkingDir: "/srv/work",
		User:       "app",
	}})
	if err != nil {
		t.Fatal(err)
	}
	ref := disktest.Push(t, disktest.Registry(t, nil), "probe:v1", img)

	bin := filepath.Join(work, "oci2disk")
	build := exec.Command("go", "build", "-o", bin, "./cmds/oci2disk")
	build.Dir = a.Repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build oci2disk: %v\n%s", err, out)
	}
	img1 := filepath.Join(work, "disk.img")
	if out, err := exec.CommandContext(context.Background(), bin, "docker://"+ref, img1).CombinedOutput(); err != nil {
		t.Fatalf("oci2disk docker://%s: %v\n%s", ref, err, out)
	} else {
		t.Logf("%s", out)
	}

	res := a.Boot(t, VM{Disk: img1, NoNet: true, Append: "ip=off"})
	for _, re := range []string{
		`(?m)^probe: uid=1000 gid=1000 groups=\[[^\]]*\b2000\b[^\]]*\] cwd=/srv/work\r?$`,
		`(?m)^probe: env GREETING=hello from the image\r?$`,
		`(?m)^probe: env WITH_SPACE=a b\r?$`,
		`(?m)^probe: env PATH=/app:/usr/bin:/bin\r?$`,
		`ginit: entrypoint exited with status 0`,
	} {
		if !regexp.MustCompile(re).MatchString(res.Console) {
			t.Errorf("console does not match %q; console:\n%s", re, res.Console)
		}
	}
	if strings.Contains(res.Console, "Kernel panic") {
		t.Errorf("kernel panic on the console:\n%s", res.Console)
	}
	if got := res.DebugExitStatus(); got != 0 {
		t.Errorf("QEMU exit status %d decodes to %d; want 0", res.QEMUExit, got)
	}
	Fsck(t, img1)
	disktest.Absent(t, img1, "/etc/obsolete")
	if got := DebugfsCat(t, img1, "/etc/group"); !strings.Contains(got, "extra:x:2000:app") {
		t.Errorf("/etc/group = %q", got)
	}
}
