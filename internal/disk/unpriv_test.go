package disk

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// unprivilegedTests are the tests re-run as an unprivileged user.
var unprivilegedTests = []string{"TestImageFromRegistry", "TestImageSourcesAgree", "TestHostileLayers", "TestDevicesAndXattrs", "TestTarSource", "TestReproducible"}

const nobody = 65534

// The image tests again, as nobody: CI runs as root, and oci2disk must do
// everything without privileges. This test binary is copied where nobody
// can run it, and runs those tests as uid and gid 65534.
func TestAsUnprivilegedUser(t *testing.T) {
	if os.Getenv("GINIT_TEST_UNPRIVILEGED") == "1" {
		t.Skip("skipping: already the unprivileged run")
	}
	testenv.NeedRoot(t, "switches to an unprivileged user (an unprivileged run is that test already)")
	needTools(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("", "oci2disk-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	home := filepath.Join(base, "home")
	for _, d := range []string{base, home} {
		os.MkdirAll(d, 0o755)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "disk.test")
	copyFile(t, self, bin, 0o755)

	cmd := exec.Command(bin, "-test.run=^("+strings.Join(unprivilegedTests, "|")+")$", "-test.count=1", "-test.v")
	cmd.Dir = home
	cmd.Env = []string{"GINIT_TEST_UNPRIVILEGED=1", "HOME=" + home, "TMPDIR=" + home, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tests as uid %d: %v\n%s", nobody, err, out)
	}
	for _, name := range unprivilegedTests {
		if !regexp.MustCompile(`(?m)^--- PASS: ` + name + ` `).Match(out) {
			t.Errorf("as uid %d, %s did not pass (skipped or missing):\n%s", nobody, name, out)
		}
	}
	t.Logf("as uid %d:\n%s", nobody, strings.Join(regexp.MustCompile(`(?m)^--- PASS: .*$`).FindAllString(string(out), -1), "\n"))
	if strings.Contains(string(out), "--- SKIP") {
		t.Errorf("as uid %d, tests skipped:\n%s", nobody, out)
	}
}

// TestMain checks the unprivileged run is what it claims to be.
func TestMain(m *testing.M) {
	if os.Getenv("GINIT_TEST_UNPRIVILEGED") == "1" && (os.Geteuid() == 0 || os.Getegid() == 0) {
		os.Stderr.WriteString("the unprivileged run has uid or gid 0\n")
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
