package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The machine has no kernel of its own: QEMU's PXE firmware (iPXE) gets a
// lease and the bootfile from QEMU's DHCP server, fetches the project's
// iPXE script from QEMU's TFTP server, and the script loads the same kernel
// and image the other tests boot directly. ginit then runs the local disk's
// workload.
func TestPXEBoot(t *testing.T) {
	t.Parallel()
	a := FindArtifacts(t)
	tftp := t.TempDir()
	copyFile(t, filepath.Join(a.Repo, "examples/netboot/boot.ipxe"), filepath.Join(tftp, "boot.ipxe"))
	copyFile(t, a.Kernel, filepath.Join(tftp, "vmlinuz"))
	copyFile(t, a.Initrd, filepath.Join(tftp, "initrd.cpio"))

	root := t.TempDir()
	a.BuildProbe(t, filepath.Join(root, "app"))
	disk := a.MakeDisk(t, root, "-entrypoint", `["/app/probe", "args", "booted over the network"]`)

	res, err := qemu.VM{Disk: disk, NetOptions: "tftp=" + tftp + ",bootfile=boot.ipxe", Timeout: 4 * time.Minute}.Run(t.Context())
	if err != nil {
		t.Fatalf("boot: %v; console:\n%s", err, res.Console)
	}
	t.Logf("VM ran %v, QEMU exit %d", res.Wall.Round(time.Millisecond), res.QEMUExit)
	wantClean(t, res,
		// The command line of the iPXE script, so the script booted it.
		"Command line: console=tty0 console=ttyS0 panic=-1",
		"Linux version",
		`probe: arg[0]="booted over the network"`,
		"ginit: entrypoint exited with status 0",
	)
	if got := res.DebugExitStatus(); got != 0 {
		t.Errorf("status = %d; want 0", got)
	}
}
