package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/ctlproto"
	"github.com/ginit-dev/ginit/internal/qemu"
	"github.com/ginit-dev/ginit/internal/rundoc"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// microvmWorkload waits for the checks' file, says so on the console, and
// ends with status 7 when stopped, after writing /stopped.txt. What it
// prints differs from its text, which ginit logs as it starts it.
const microvmWorkload = `trap 'echo stopped >/stopped.txt; exit 7' TERM
echo "microvm: token=$TOKEN"
until [ -e /tmp/checked ]; do sleep 0.2; done
echo "microvm: checks $(cat /tmp/checked)"
while :; do sleep 1; done`

// needMicroVM skips (fails under make test) where microvm cannot boot
// under TCG: without the host's TSC rate.
func needMicroVM(t *testing.T) {
	t.Helper()
	if qemu.HostTSCkHz() == 0 {
		testenv.Missing(t, "microvm under TCG needs the host's TSC rate (bogomips in /proc/cpuinfo)")
	}
}

// One boot on QEMU's microvm machine: the disk, the network card and the
// control ports are virtio-mmio devices that ACPI describes, so ginit must
// find them on the platform bus and load their drivers; DHCP leases over
// QEMU's user network; the run document comes through fw_cfg; exec runs
// on the control channel; the power button (microvm's ACPI GED) stops the
// workload, whose status reaches QEMU through isa-debug-exit and the
// console line; the disk is clean.
func TestMicroVM(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	needMicroVM(t)
	disk := a.MakeDisk(t, busyboxRoot(t, a, map[string]any{
		"Entrypoint": []string{"/bin/sh", "-c", microvmWorkload},
		"Env":        []string{"PATH=/bin"},
	}))
	doc := writeRunDoc(t, `{"version":1,"hostname":"microbox","env":["TOKEN=from-the-document"]}`)
	v := bootControlVM(t, a, VM{
		Machine: qemu.MicroVM, Disk: disk, NetOptions: "dnssearch=micro.test",
		FwCfg: map[string]string{rundoc.FwCfgName: doc}, Append: "ginit.debug", Timeout: 5 * time.Minute,
		// The power button's driver loads after the workload starts:
		// press it once both it and the checks are done.
		Triggers: []qemu.Trigger{{When: "ginit: watching the power button"}, {When: "microvm: checks done", Command: "system_powerdown"}},
	}, ctlproto.PhaseRunning)

	code, out := v.run(t, ctlproto.ExecSpec{Argv: []string{"sh", "-c",
		`hostname; cat /etc/resolv.conf; ls /sys/bus/platform/drivers/virtio-mmio; echo done >/tmp/checked`}})
	if code != 0 {
		t.Errorf("exec: status %d; output:\n%s", code, out)
	}
	for _, want := range []string{
		"microbox\n",            // the run document's hostname
		"search micro.test\n",   // the DHCP lease's
		"nameserver 10.0.2.3\n", // the DHCP lease's
		"LNRO0005:",             // the virtio-mmio transports, bound
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exec output lacks %q:\n%s", want, out)
		}
	}
	<-v.done
	if v.err != nil {
		t.Fatalf("boot: %v", v.err)
	}
	res := v.res
	if !leaseLine.MatchString(res.Console) {
		t.Errorf("no DHCPv4 lease line on the console")
	}
	wantConsole(t, res,
		"ginit: run document read from fw_cfg opt/ginit/run (1 env entries)",
		"microvm: token=from-the-document",
		"ginit: power button pressed",
		"ginit: entrypoint exited with status 7")
	noPanic(t, res)
	if got := res.DebugExitStatus(); got != 7 {
		t.Errorf("QEMU exit status %d decodes to %d; want 7", res.QEMUExit, got)
	}
	if got := res.ExitLine(); got != 7 {
		t.Errorf("console exit line: %d; want 7", got)
	}
	Fsck(t, disk)
	if got := DebugfsCat(t, disk, "/stopped.txt"); got != "stopped\n" {
		t.Errorf("/stopped.txt = %q; want the trap's line", got)
	}
}

// microvm reboots: a workload that ends under ginit.onexit=reboot comes
// back on the same disk, and counts its boots there.
func TestMicroVMReboot(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	needMicroVM(t)
	disk := a.MakeDisk(t, busyboxRoot(t, a, map[string]any{
		"Entrypoint": []string{"/bin/sh", "-c", `n=$(($(cat /boots 2>/dev/null || echo 0) + 1)); echo $n >/boots; echo "microvm: boot number $n"`},
		"Env":        []string{"PATH=/bin"},
	}))
	res := a.Boot(t, VM{Machine: qemu.MicroVM, Disk: disk, NoNet: true, Reboot: true, Append: "ginit.onexit=reboot",
		Triggers: []qemu.Trigger{{When: "microvm: boot number 2", Command: "quit"}}, Timeout: 3 * time.Minute})
	wantConsole(t, res, "microvm: boot number 1", "ginit: reboot", "microvm: boot number 2")
	noPanic(t, res)
}
