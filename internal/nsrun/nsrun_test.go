package nsrun

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/reaper"
)

// PID 1's reaper starts the stage: its Start must stay a StartFunc.
func _() {
	var r *reaper.Reaper
	var _ StartFunc = r.Start
}

func TestExitOf(t *testing.T) {
	exited := func(code int) unix.WaitStatus { return unix.WaitStatus(code << 8) }
	killed := func(sig syscall.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }
	for _, tc := range []struct {
		ws     unix.WaitStatus
		nsInit bool
		reason Reason
		code   int
	}{
		{exited(0), true, Exited, 0},
		{exited(3), false, Exited, 3},
		{killed(unix.SIGINT), true, PowerOff, 130},
		{killed(unix.SIGHUP), true, Reboot, 129},
		{killed(unix.SIGKILL), true, Killed, 137},
		// Only a namespace's init dies of SIGINT or SIGHUP by reboot(2).
		{killed(unix.SIGINT), false, Killed, 130},
		{killed(unix.SIGHUP), false, Killed, 129},
	} {
		e := exitOf(tc.ws, tc.nsInit)
		if e.Reason != tc.reason || e.Code != tc.code {
			t.Errorf("exitOf(%#x, %v) = %v, %d; want %v, %d", int(tc.ws), tc.nsInit, e.Reason, e.Code, tc.reason, tc.code)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": unix.SIGTERM, "term": unix.SIGTERM, "15": unix.SIGTERM, "SIGKILL": unix.SIGKILL,
		"SIGRTMIN+3": 37, "RTMIN+3": 37, "rtmin": 34, "SIGRTMAX": 64, "RTMAX-1": 63, "SIGUSR1": unix.SIGUSR1,
	} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "SIGNOPE", "0", "65", "RTMIN+31", "RTMAX-31", "RTMIN+x"} {
		if got, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) = %d; want an error", bad, got)
		}
	}
	if got := SignalName(37); got != "SIGRTMIN+3" {
		t.Errorf("SignalName(37) = %q; want SIGRTMIN+3", got)
	}
	if got := SignalName(unix.SIGTERM); got != "SIGTERM" {
		t.Errorf("SignalName(SIGTERM) = %q; want SIGTERM", got)
	}
}

func TestParseCapabilities(t *testing.T) {
	set, err := ParseCapabilities([]string{"CAP_CHOWN", "kill", " sys_boot ", "7"})
	want := uint64(1<<0 | 1<<5 | 1<<22 | 1<<7)
	if err != nil || set != want {
		t.Errorf("ParseCapabilities = %#x, %v; want %#x", set, err, want)
	}
	if got := CapabilityNames(set); !reflect.DeepEqual(got, []string{"CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SYS_BOOT"}) {
		t.Errorf("CapabilityNames(%#x) = %v", set, got)
	}
	if _, err := ParseCapabilities([]string{"CAP_FLY"}); err == nil {
		t.Errorf("ParseCapabilities(CAP_FLY) succeeded; want an error")
	}
	if set, _ := ParseCapabilities(DefaultCapabilities()); set != 0xa84425fb {
		t.Errorf("DefaultCapabilities() = %#x; want Docker's 0xa80425fb and CAP_SYS_BOOT", set)
	}
}

func TestRelayed(t *testing.T) {
	for _, tc := range []struct {
		sig           syscall.Signal
		terminalGroup bool
		want          bool
	}{
		{unix.SIGTERM, true, true},
		{unix.SIGHUP, false, true},
		{unix.SIGUSR1, true, true},
		{unix.SIGCHLD, false, false},
		{unix.SIGURG, false, false},
		{unix.SIGINT, true, false},
		{unix.SIGINT, false, true},
		{unix.SIGWINCH, true, false},
		{unix.SIGWINCH, false, true},
	} {
		if got := Relayed(tc.sig, tc.terminalGroup); got != tc.want {
			t.Errorf("Relayed(%v, %v) = %v; want %v", tc.sig, tc.terminalGroup, got, tc.want)
		}
	}
}

func stepTargets(steps []step, kind stepKind) []string {
	var out []string
	for _, s := range steps {
		if s.Kind == kind {
			out = append(out, s.Target)
		}
	}
	return out
}

func TestPlan(t *testing.T) {
	def := plan(&initSpec{}, nil, "")
	mounts := stepTargets(def, stepMount)
	wantMounts := []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev", "/dev/pts", "/dev/shm", "/run", "/tmp"}
	if !reflect.DeepEqual(mounts, wantMounts) {
		t.Errorf("default mounts = %v; want %v", mounts, wantMounts)
	}
	if got := stepTargets(def, stepMask); !reflect.DeepEqual(got, MaskedPaths()) {
		t.Errorf("masked = %v; want %v", got, MaskedPaths())
	}
	if got := stepTargets(def, stepReadOnly); !reflect.DeepEqual(got, ReadOnlyPaths()) {
		t.Errorf("read-only = %v; want %v", got, ReadOnlyPaths())
	}
	if got := stepTargets(def, stepBind); len(got) != 0 {
		t.Errorf("default binds = %v; want none (no terminal, no carried mounts)", got)
	}
	for _, s := range def {
		if s.Target == "/sys/fs/cgroup" && !s.Optional {
			t.Errorf("cgroup2 is not optional: a kernel without it would fail every start")
		}
		if s.Kind == stepMount && s.Target == "/dev" && s.Flags&unix.MS_NODEV != 0 {
			t.Errorf("/dev is nodev: its device nodes would not open")
		}
	}

	spec := &initSpec{
		Dev: DevHost, Privileged: true, NewIPC: true,
		Binds: []Bind{{Source: "/data", Target: "/srv", ReadOnly: true}},
		Tmpfs: []string{"/scratch"},
	}
	got := plan(spec, []string{"/vol"}, "/dev/pts/3")
	if m := stepTargets(got, stepMask); len(m) != 0 {
		t.Errorf("privileged masks %v; want none", m)
	}
	if b := stepTargets(got, stepBind); !reflect.DeepEqual(b, []string{"/vol", "/dev", "/srv"}) {
		t.Errorf("binds = %v; want the carried /vol first, the host's /dev, then /srv", b)
	}
	if d := stepTargets(got, stepDevice); len(d) != 0 {
		t.Errorf("host /dev still makes devices %v", d)
	}
	if m := stepTargets(got, stepMount); !contains(m, "/dev/mqueue") || !contains(m, "/scratch") {
		t.Errorf("mounts = %v; want /dev/mqueue and /scratch", m)
	}
	withTTY := plan(&initSpec{}, nil, "/dev/pts/3")
	for _, s := range withTTY {
		if s.Target == "/dev/console" && (s.Kind != stepBind || s.Source != "/dev/pts/3") {
			t.Errorf("console step = %v; want the terminal bound", s)
		}
	}
	if !contains(stepTargets(withTTY, stepBind), "/dev/console") {
		t.Errorf("no /dev/console for a terminal")
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func TestCarriedMounts(t *testing.T) {
	mountinfo := `22 1 0:21 / / rw - ext4 /dev/vda rw
23 22 0:22 / /proc rw - proc proc rw
24 22 0:23 / /sys rw - sysfs sysfs rw
25 22 0:5 / /dev rw - devtmpfs udev rw
26 22 0:24 / /data rw - ext4 /dev/vdb rw
27 26 0:25 / /data/sub rw - tmpfs tmpfs rw
28 22 0:26 /resolv.conf /etc/resolv.conf rw shared:1 - ext4 /dev/vda rw
29 22 0:27 / /mnt rw - tmpfs tmpfs rw
30 29 0:28 / /mnt/root rw - ext4 /dev/vdc rw
31 30 0:29 / /mnt/root/inner rw - tmpfs tmpfs rw
32 22 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
33 22 0:31 / /with\040space rw - tmpfs tmpfs rw
34 22 0:32 / /data rw - tmpfs tmpfs rw
`
	mps := parseMountPoints(strings.NewReader(mountinfo))
	if len(mps) != 13 || mps[11].Path != "/with space" || mps[6].FSType != "ext4" {
		t.Fatalf("parseMountPoints = %+v", mps)
	}
	got := carriedMounts(mps, "/mnt/root")
	want := []string{"/data", "/etc/resolv.conf", "/with space"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("carriedMounts(root /mnt/root) = %v; want %v", got, want)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "db.main", "x_y", "0"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v; want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".x", "a/b", "..", "a b", strings.Repeat("a", 129)} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) = nil; want an error", bad)
		}
	}
}

func TestRecords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	self, err := NewRecord("self", &Process{Pid: os.Getpid()}, Config{Root: "/r", Command: Command{Argv: []string{"/sbin/init"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !self.Alive() {
		t.Fatalf("a record of this process is not alive: %+v", self)
	}
	if err := self.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	if err := self.Save(dir, false); err == nil {
		t.Errorf("Save of a running name succeeded; want an error")
	}
	got, err := LoadRecord(dir, "self")
	if err != nil || got.Pid != os.Getpid() || got.Root != "/r" || got.StartTime != self.StartTime {
		t.Errorf("LoadRecord = %+v, %v", got, err)
	}

	// A record whose start time does not match is a reused pid: stale.
	stale := self
	stale.Name, stale.StartTime = "stale", self.StartTime+1
	if err := stale.Save(dir, false); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRecord(dir, "stale"); !errors.Is(err, ErrNoInstance) {
		t.Errorf("LoadRecord(stale) = %v; want ErrNoInstance", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "stale.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record still there: %v", err)
	}
	stale.Save(dir, false)
	list, err := ListRecords(dir)
	if err != nil || len(list) != 1 || list[0].Name != "self" {
		t.Errorf("ListRecords = %+v, %v; want only self", list, err)
	}

	// Remove leaves a newer instance's record alone.
	other := self
	other.StartTime++
	other.Remove(dir)
	if _, err := LoadRecord(dir, "self"); err != nil {
		t.Errorf("Remove of another instance removed self's record: %v", err)
	}
	self.Remove(dir)
	if _, err := LoadRecord(dir, "self"); !errors.Is(err, ErrNoInstance) {
		t.Errorf("after Remove: %v; want ErrNoInstance", err)
	}
	if list, err := ListRecords(filepath.Join(dir, "missing")); err != nil || len(list) != 0 {
		t.Errorf("ListRecords(missing dir) = %v, %v; want nothing", list, err)
	}
}
