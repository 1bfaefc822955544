package integration

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// A full init as the entrypoint: systemd runs in namespaces of its own, and
// its poweroff powers the machine off, its reboot reboots it.
func TestSystemdEntrypointPowerOffAndReboot(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	root := envOr("GINIT_SYSTEMD_ROOT", filepath.Join(a.Repo, "build/systemd/root"))
	testenv.NeedFile(t, filepath.Join(root, "lib/systemd/systemd"), "a Debian root with systemd: scripts/test-systemd.sh --root-only "+root+" makes it (make test does)")
	disk := a.MakeDisk(t, root)
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
