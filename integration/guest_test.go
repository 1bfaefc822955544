package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// ginitctl run's flags that change the guest, as docker run's do, in two
// boots: --dns and --add-host in the workload's /etc files, --read-only
// refusing a write to / while /tmp and the mounts take them, --tmpfs, a
// host directory through -v (and :ro refusing writes), a named volume
// that starts with the image's content and keeps a file for the second
// run (whose entrypoint and workdir are in the shared directory), and
// --stop-signal over the
// image's StopSignal on Ctrl-C. Then volume ls and rm, and a host
// directory that does not exist.
func TestGinitctlGuest(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	testenv.NeedFile(t, "/usr/lib/qemu/virtiofsd", "apt-get install qemu-system-common")
	testenv.NeedRoot(t, "QEMU's virtiofsd runs as root")
	tmp := t.TempDir()
	ctl := a.buildGinitctl(t, tmp)
	root := probeRoot(t, a, map[string]any{"Entrypoint": []string{"/app/probe", "steps"}, "StopSignal": "SIGTERM"})
	// Content at the mount points: a new named volume starts with it, a
	// host directory hides it, as in docker.
	for _, p := range []string{"srv/seed/seed.txt", "data/image.txt"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte("from the image\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shared, ro := filepath.Join(tmp, "shared"), filepath.Join(tmp, "ro")
	for _, d := range []string{shared, ro} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(shared, "hello.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(tmp, "state")
	ginitctl := func(args ...string) *exec.Cmd {
		if args[0] == "run" {
			args = append([]string{"run", "--kernel", a.Kernel, "--initrd", a.Initrd}, args[1:]...)
		}
		return exec.Command(ctl, append(args[:1:1], append([]string{"--state", state}, args[1:]...)...)...)
	}

	cmd := ginitctl("run", "--rm", "--append", "ginit.debug", "--dns", "192.0.2.53", "--add-host", "db:10.0.0.2",
		"--read-only", "--tmpfs", "/scratch:size=1m", "--stop-signal", "SIGUSR1",
		"-v", shared+":/data", "-v", ro+":/ro:ro", "-v", "keep:/srv/seed",
		"dir:"+root, "cat=/etc/resolv.conf", "cat=/etc/hosts", "cat=/proc/mounts",
		"write=/rootfile=x", "write=/tmp/t=x", "write=/scratch/s=x",
		"cat=/data/hello.txt", "write=/data/from-guest.txt=hello host", "write=/ro/x=x",
		"cat=/srv/seed/seed.txt", "write=/srv/seed/keep.txt=kept", "cat=/data/image.txt", "stopwait=/data/stopped.txt")
	out, code := runCtrlC(t, cmd)
	for _, want := range []string{
		"probe: /etc/resolv.conf: nameserver 192.0.2.53",
		"probe: /etc/hosts: 10.0.0.2\tdb",
		"probe: /proc/mounts: tmpfs /scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k",
		"probe: write /rootfile: open /rootfile: read-only file system",
		"probe: write /tmp/t: ok",
		"probe: write /scratch/s: ok",
		"probe: /data/hello.txt: from the host",
		"probe: write /data/from-guest.txt: ok",
		"probe: write /ro/x: open /ro/x: read-only file system",
		"probe: /srv/seed/seed.txt: from the image",
		"probe: write /srv/seed/keep.txt: ok",
		"probe: cat /data/image.txt: open /data/image.txt: no such file or directory",
		"probe: stopped by SIGUSR1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "nameserver 10.0.2.3") {
		t.Errorf("resolv.conf keeps DHCP's name server beside --dns's")
	}
	if code != 0 {
		t.Errorf("status %d; want 0", code)
	}
	for name, want := range map[string]string{"from-guest.txt": "hello host\n", "stopped.txt": "stopped by SIGUSR1\n"} {
		if b, err := os.ReadFile(filepath.Join(shared, name)); string(b) != want {
			t.Errorf("host's %s = %q, %v; want %q", name, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(ro, "x")); err == nil {
		t.Errorf("the :ro volume took a write")
	}
	if t.Failed() {
		t.Fatalf("ginitctl run:\n%s", out)
	}

	// The named volume kept its file; an entrypoint and a working
	// directory in a shared directory are found there.
	probe, err := os.ReadFile(filepath.Join(root, "app/probe"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shared, "probe"), probe, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := ginitctl("run", "--rm", "-v", "keep:/srv/seed", "-v", shared+":/data", "--entrypoint", "/data/probe", "-w", "/data",
		"dir:"+root, "steps", "cat=/srv/seed/keep.txt", "cat=hello.txt").CombinedOutput()
	if !strings.Contains(string(b), "probe: /srv/seed/keep.txt: kept") || !strings.Contains(string(b), "probe: hello.txt: from the host") || err != nil {
		t.Errorf("second run: %v; want the volume's file, and the shared directory's through the workdir:\n%s", err, b)
	}
	if b, err := ginitctl("volume", "ls").CombinedOutput(); err != nil || !strings.Contains(string(b), "\nkeep ") {
		t.Errorf("volume ls = %v:\n%s\nwant keep", err, b)
	}
	if b, err := ginitctl("volume", "rm", "keep").CombinedOutput(); err != nil {
		t.Errorf("volume rm keep = %v:\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(state, "volumes", "keep")); err == nil {
		t.Errorf("volume rm left the volume")
	}

	// A host directory that is not there: one line, 125, nothing left.
	missing := ginitctl("run", "-v", filepath.Join(tmp, "nosuch")+":/x", "dir:"+root)
	b, _ = missing.CombinedOutput()
	if code := missing.ProcessState.ExitCode(); code != 125 || strings.Count(strings.TrimSpace(string(b)), "\n") != 0 || !strings.Contains(string(b), "does not exist") {
		t.Errorf("run -v NOSUCH:/x: status %d, output %q; want 125 and one line naming it", code, b)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "vms", "*")); len(left) != 0 {
		t.Errorf("runs left %v", left)
	}
}

// systemd credentials given to ginitctl run reach a systemd workload,
// which imports them itself from fw_cfg (the qemu_fw_cfg driver rides in
// the extra archive).
func TestGinitctlCredentials(t *testing.T) {
	a := FindArtifacts(t)
	testenv.NeedTools(t, "mkfs.ext4", "debugfs")
	root := systemdRoot(t, a)
	tmp := t.TempDir()
	ctl := a.buildGinitctl(t, tmp)
	const secret = "cred-from-a-file-4711"
	credFile := filepath.Join(tmp, "token")
	if err := os.WriteFile(credFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	// systemd-run-generator runs the command line's systemd.run= and
	// powers off; journald shows its output on the console.
	cmd := exec.Command(ctl, "run", "--rm", "--state", filepath.Join(tmp, "state"), "--kernel", a.Kernel, "--initrd", a.Initrd,
		"--credential", "greeting=hello-cred", "--load-credential", "token:"+credFile,
		"--append", `systemd.run="/bin/cat /run/credentials/@system/greeting /run/credentials/@system/token" systemd.journald.forward_to_console=1`,
		"dir:"+root, "/lib/systemd/systemd")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ginitctl run: %v:\n%s", err, out)
	}
	if !strings.Contains(string(out), "]: hello-cred") || !strings.Contains(string(out), secret) {
		t.Errorf("output lacks both credentials, as cat prints them:\n%s", out)
	}
}
