package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// systemdRoot is the debootstrapped Debian root with systemd the tests boot.
func systemdRoot(t *testing.T, a Artifacts) string {
	t.Helper()
	root := envOr("GINIT_SYSTEMD_ROOT", filepath.Join(a.Repo, "build/systemd/root"))
	testenv.NeedFile(t, filepath.Join(root, "lib/systemd/systemd"), "a Debian root with systemd: scripts/test-systemd.sh --root-only "+root+" makes it (make test does)")
	return root
}

// A full init as the entrypoint: systemd runs in namespaces of its own, and
// its poweroff powers the machine off, its reboot reboots it.
func TestSystemdEntrypointPowerOffAndReboot(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := a.MakeDisk(t, systemdRoot(t, a))
	for _, tt := range []struct{ unit, said, action string }{
		{"poweroff.target", "the workload's init powered off", "ginit: poweroff"},
		{"reboot.target", "the workload's init rebooted", "ginit: reboot"},
	} {
		res := a.Boot(t, VM{Disk: disk, NoNet: true, Timeout: 4 * time.Minute,
			Append: `entrypoint="/lib/systemd/systemd --unit=` + tt.unit + `"`})
		wantConsole(t, res, "ginit: starting", "ginit: "+tt.said, tt.action)
		noPanic(t, res)
		Fsck(t, disk)
	}
}

// Debian's /sbin/init is a link to systemd, and is stopped as systemd: the
// power button becomes SIGRTMIN+3 and a clean systemd shutdown, not SIGTERM
// (which only makes systemd re-execute itself) and a SIGKILL.
func TestSystemdSbinInitPowerButton(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	root := systemdRoot(t, a)
	if target, err := os.Readlink(filepath.Join(root, "sbin/init")); err != nil || filepath.Base(target) != "systemd" {
		t.Fatalf("%s/sbin/init -> %q, %v; want a link to systemd", root, target, err)
	}
	disk := a.MakeDisk(t, root)
	res := a.Boot(t, VM{Disk: disk, NoNet: true, Timeout: 4 * time.Minute,
		// A loaded machine under TCG takes systemd more than the default 10 s to shut down.
		Append: "entrypoint=/sbin/init ginit.debug ginit.stoptimeout=60s",
		Triggers: []qemu.Trigger{
			// systemd is up, and ginit watches the power button.
			{When: "Multi-User System"},
			{When: "ginit: watching the power button", Command: "system_powerdown"},
		}})
	// systemd-shutdown's own "Sending SIGKILL to remaining processes" is
	// part of a clean shutdown; ginit's SIGKILL after the grace is not.
	if strings.Contains(res.Console, "ginit: workload still running") {
		t.Errorf("ginit had to SIGKILL systemd: it was not stopped cleanly")
	}
	wantClean(t, res, "ginit: power button pressed",
		"ginit: received SIGPWR: sending SIGRTMIN+3 to the workload",
		"ginit: the workload's init powered off",
		"ginit: entrypoint exited with status 0",
		"ginit: poweroff")
	Fsck(t, disk)
}

// A systemd workload is ready when systemd says READY=1 on the
// NOTIFY_SOCKET ginit gives it, as systemd-nspawn's container manager
// hears it: once its default target is reached, not at its start.
func TestSystemdReady(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	disk := a.MakeDisk(t, systemdRoot(t, a))
	v := bootControlVM(t, a, VM{Disk: disk, NoNet: true, Timeout: 6 * time.Minute,
		// A loaded machine under TCG takes systemd more than the default 10 s to shut down.
		Append: "entrypoint=/sbin/init ginit.stoptimeout=60s"}, ctlproto.PhaseStarting)
	var got []string
	err := v.c.Events(context.Background(), func(st *ctlproto.Status, ev *ctlproto.EventMsg) {
		switch {
		case st != nil:
			got = append(got, "status:"+st.Phase)
			if st.Ready {
				t.Errorf("ready at the subscription, before systemd could have reached its target: %+v", st)
			}
		case ev.Name == ctlproto.EventReady:
			got = append(got, ev.Name)
			console := v.cons.String()
			if !strings.Contains(console, "Multi-User System") {
				t.Errorf("ready before systemd reached multi-user.target:\n%s", console)
			}
			if st, err := v.c.Status(context.Background()); err != nil || !st.Ready || st.Phase != ctlproto.PhaseRunning {
				t.Errorf("status after the ready event: %+v, %v", st, err)
			}
			if _, err := v.c.Stop(context.Background()); err != nil {
				t.Errorf("stop: %v", err)
			}
		default:
			got = append(got, ev.Name)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	wantReadyThenStop(t, got)
	<-v.done
	wantClean(t, qemu.Result{Console: v.cons.String()}, "ginit: systemd reached its default target (READY=1)",
		"ginit: the workload is ready", "ginit: the workload's init powered off")
	Fsck(t, disk)
}
