package integration

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

// probeRoot is a root directory with the probe at /app/probe, an
// /etc/passwd and /etc/group with an unprivileged user, and optionally an
// image config.
func probeRoot(t *testing.T, a Artifacts, imageConfig map[string]any) string {
	t.Helper()
	root := t.TempDir()
	a.BuildProbe(t, filepath.Join(root, "app"))
	files := map[string]string{
		"etc/passwd":      "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n",
		"etc/group":       "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
		"etc/resolv.conf": "",
	}
	if imageConfig != nil {
		b, err := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": imageConfig})
		if err != nil {
			t.Fatal(err)
		}
		files[".ginit/image.json"] = string(b)
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func noPanic(t *testing.T, res qemu.Result) {
	t.Helper()
	if strings.Contains(res.Console, "Kernel panic") {
		t.Errorf("kernel panic on the console:\n%s", res.Console)
	}
}

func wantConsole(t *testing.T, res qemu.Result, lines ...string) {
	t.Helper()
	for _, want := range lines {
		if !strings.Contains(res.Console, want) {
			t.Errorf("console lacks %q; console:\n%s", want, res.Console)
		}
	}
}

// The image config alone says what runs: Entrypoint + Cmd, Env, WorkingDir
// (made when missing), User with its groups and HOME.
func TestImageConfigUserWorkdirEnv(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	root := probeRoot(t, a, map[string]any{
		"Entrypoint": []string{"/app/probe"},
		"Cmd":        []string{"env"},
		"Env":        []string{"PATH=/app:/usr/bin", "GREETING=from the image", "MODE=image"},
		"WorkingDir": "/srv/work",
		"User":       "app",
	})
	disk := a.MakeDisk(t, root)
	res := a.Boot(t, VM{Disk: disk, NoNet: true, Append: "ginit.env=MODE=cmdline"})
	wantConsole(t, res,
		"probe: uid=1000 gid=1000 groups=[50] cwd=/srv/work",
		"probe: env GREETING=from the image",
		"probe: env MODE=cmdline",
		"probe: env HOME=/home/app",
		"probe: env PATH=/app:/usr/bin",
		"ginit: entrypoint exited with status 0")
	noPanic(t, res)
	if got := res.DebugExitStatus(); got != 0 {
		t.Errorf("exit status = %d; want 0", got)
	}
}

// Arguments with spaces, quoted on the kernel command line, arrive intact;
// the disk is found by UUID.
func TestQuotedArgumentsAndRootByUUID(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	const uuid = "6b1f3a52-9c4e-4d2a-8f0e-2a7c5d9e1b34"
	disk := a.MakeDisk(t, probeRoot(t, a, nil), "--uuid", uuid)
	res := a.Boot(t, VM{Disk: disk, NoNet: true,
		Append: `root=UUID=` + strings.ToUpper(uuid) + ` entrypoint="/app/probe args 'two words' plain"`})
	wantConsole(t, res,
		`probe: arg[0]="two words"`,
		`probe: arg[1]="plain"`,
		"ginit: entrypoint exited with status 0")
	noPanic(t, res)
}

// Commands that cannot run give the shell's statuses, and a workload killed
// by a signal gives 128+signal, on the console and (low 7 bits) from QEMU.
func TestEntrypointFailureStatuses(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	root := probeRoot(t, a, nil)
	if err := os.WriteFile(filepath.Join(root, "app/notexec"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	disk := a.MakeDisk(t, root)
	for _, tt := range []struct {
		entrypoint string
		status     int
		message    string
	}{
		{"/app/missing", 127, "/app/missing"},
		{"/app/notexec", 126, "/app/notexec"},
		{"/app/probe segv", 139, "signal SIGSEGV"},
	} {
		res := a.Boot(t, VM{Disk: disk, NoNet: true, Append: `entrypoint="` + tt.entrypoint + `"`})
		if got := res.ExitLine(); got != tt.status {
			t.Errorf("entrypoint=%s: console status %d; want %d\n%s", tt.entrypoint, got, tt.status, res.Console)
		}
		if got := res.DebugExitStatus(); got != tt.status%128 {
			t.Errorf("entrypoint=%s: QEMU status %d decodes to %d; want %d", tt.entrypoint, res.QEMUExit, got, tt.status%128)
		}
		wantConsole(t, res, tt.message)
		noPanic(t, res)
		Fsck(t, disk)
	}
}

// A workload that leaves 1000 orphans to PID 1 finds no zombies afterwards.
func TestThousandOrphansReaped(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := a.MakeDisk(t, probeRoot(t, a, nil))
	res := a.Boot(t, VM{Disk: disk, NoNet: true, Append: `entrypoint="/app/probe orphans 1000"`, Timeout: 3 * time.Minute})
	wantConsole(t, res, "probe: started 1000 orphans; zombies=0", "ginit: entrypoint exited with status 0")
	noPanic(t, res)
}

// Ctrl-Alt-Del and the ACPI power button stop the workload with the image's
// StopSignal, and what it writes on the way out is on a clean disk.
func TestStopByCtrlAltDelAndPowerButton(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	for _, tt := range []struct {
		name, signal, logged string
		triggers             []qemu.Trigger
	}{
		{"ctrl-alt-del", "", "received SIGINT", []qemu.Trigger{
			{When: "probe: waiting for a stop signal", Command: "sendkey ctrl-alt-delete"}}},
		// The power button's driver loads after the workload starts; press
		// it once both are ready.
		{"power button", "SIGUSR1", "power button pressed", []qemu.Trigger{
			{When: "probe: waiting for a stop signal"},
			{When: "ginit: watching the power button", Command: "system_powerdown"}}},
	} {
		cfg := map[string]any{"Entrypoint": []string{"/app/probe", "stopwait", "/stopped.txt"}}
		want := "stopped by SIGTERM\n"
		if tt.signal != "" {
			cfg["StopSignal"] = tt.signal
			want = "stopped by " + tt.signal + "\n"
		}
		disk := a.MakeDisk(t, probeRoot(t, a, cfg))
		res := a.Boot(t, VM{Disk: disk, NoNet: true, Triggers: tt.triggers, Append: "ginit.debug"})
		wantConsole(t, res, "ginit: "+tt.logged, "ginit: entrypoint exited with status 0")
		noPanic(t, res)
		Fsck(t, disk)
		if got := DebugfsCat(t, disk, "/stopped.txt"); got != want {
			t.Errorf("%s: /stopped.txt = %q; want %q", tt.name, got, want)
		}
	}
}

// An entrypoint that daemonizes keeps the machine up until its daemon ends.
func TestDaemonizingEntrypoint(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := a.MakeDisk(t, probeRoot(t, a, nil))
	res := a.Boot(t, VM{Disk: disk, NoNet: true, Append: `root=LABEL=ginit-root entrypoint="/app/probe daemon /daemon.txt 2"`})
	wantConsole(t, res, "probe: daemonized", "ginit: the entrypoint daemonized", "ginit: the daemonized processes have exited")
	noPanic(t, res)
	Fsck(t, disk)
	if got := DebugfsCat(t, disk, "/daemon.txt"); got != "written by the daemon\n" {
		t.Errorf("/daemon.txt = %q; want the daemon's line", got)
	}
}

// A root filesystem whose group descriptors are destroyed fails to mount:
// one clear error line, the onerror action, no kernel panic.
func TestCorruptRootFilesystem(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := a.MakeDisk(t, probeRoot(t, a, nil))
	corruptGroupDescriptors(t, disk)
	res := a.Boot(t, VM{Disk: disk, NoNet: true, Append: "ginit.onerror=poweroff"})
	lines := regexp.MustCompile(`(?m)^ginit: boot failed: .*$`).FindAllString(res.Console, -1)
	if len(lines) != 1 || !strings.Contains(lines[0], "mount root") {
		t.Errorf("boot failed lines = %q; want one naming the root mount\n%s", lines, res.Console)
	}
	noPanic(t, res)
	if got := res.DebugExitStatus(); got != 125 {
		t.Errorf("QEMU status decodes to %d; want 125", got)
	}
}

// corruptGroupDescriptors zeroes the ext4 block group descriptor table.
func corruptGroupDescriptors(t *testing.T, img string) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		t.Fatal(err)
	}
	blockSize := int64(1024) << binary.LittleEndian.Uint32(sb[0x18:])
	firstData := int64(binary.LittleEndian.Uint32(sb[0x14:]))
	if _, err := f.WriteAt(make([]byte, blockSize), (firstData+1)*blockSize); err != nil {
		t.Fatal(err)
	}
}

// ginit.shell=1 starts a shell on the console beside the workload: a
// command typed there runs (the shell computes what the typed line does not
// say), and the machine still stops as usual.
func TestShellBesideWorkload(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := a.MakeDisk(t, probeRoot(t, a, map[string]any{"Entrypoint": []string{"/app/probe", "stopwait", "/stopped.txt"}}))
	res := a.Boot(t, VM{Disk: disk, NoNet: true, Append: "ginit.shell=1", Triggers: []qemu.Trigger{
		{When: "probe: waiting for a stop signal", Input: "echo shell-says-$((6*7))\n"},
		{When: "shell-says-42", Command: "sendkey ctrl-alt-delete"},
	}})
	wantConsole(t, res, "shell-says-42", "ginit: received SIGINT", "ginit: entrypoint exited with status 0")
	noPanic(t, res)
	Fsck(t, disk)
	if got := DebugfsCat(t, disk, "/stopped.txt"); got != "stopped by SIGTERM\n" {
		t.Errorf("/stopped.txt = %q; want stopped by SIGTERM", got)
	}
}
