package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// probeSector is a boot sector that writes 42 to the isa-debug-exit port
// and halts: QEMU exits with 42<<1|1 once the guest has run it.
var probeSector = func() []byte {
	b := make([]byte, 512)
	copy(b, []byte{
		0xb0, 0x2a, // mov al, 42
		0xe6, 0xf4, // out 0xf4, al
		0xf4,       // hlt
		0xeb, 0xfd, // jmp to the hlt
	})
	b[510], b[511] = 0x55, 0xaa
	return b
}()

// probeExit is QEMU's status once the probe sector ran.
const probeExit = 42<<1 | 1

// Probe boots a one-sector guest under accel (kvm, tcg) and reports whether
// it ran within timeout: some hosts open /dev/kvm and then hang every
// guest, which only a boot shows. It takes a fraction of a second where
// the accelerator works.
func Probe(ctx context.Context, accel string, timeout time.Duration) error {
	dir, err := os.MkdirTemp("", "ginit-probe-")
	if err != nil {
		return fmt.Errorf("probe %s: %w", accel, err)
	}
	defer os.RemoveAll(dir)
	sector := filepath.Join(dir, "boot.img")
	if err := os.WriteFile(sector, probeSector, 0o600); err != nil {
		return fmt.Errorf("probe %s: %w", accel, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-M", "pc", "-accel", accel, "-m", "16",
		"-display", "none", "-nodefaults", "-no-reboot",
		"-device", "isa-debug-exit,iobase=0xf4,iosize=0x01",
		"-drive", "file="+sector+",format=raw,if=ide")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("probe %s: no boot within %v", accel, timeout)
	case errors.As(err, &ee) && ee.ExitCode() == probeExit:
		return nil
	case err != nil:
		return fmt.Errorf("probe %s: qemu: %w: %s", accel, err, strings.TrimSpace(string(out)))
	}
	return fmt.Errorf("probe %s: qemu exited 0 before the guest ran", accel)
}
