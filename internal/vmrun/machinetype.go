package vmrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/u-root/mkuimage/cpio"

	"github.com/ginit-dev/ginit/internal/qemu"
)

// machineTypes is QEMU's list of machine types as the state directory
// caches it, for one build of QEMU's binary: asking it costs a QEMU start.
type machineTypes struct {
	QEMU     string    `json:"qemu"` // the binary's path
	Size     int64     `json:"size"`
	ModTime  time.Time `json:"mtime"`
	Machines []string  `json:"machines"`
}

// machineChooser resolves --machine for a run; its fields are the seams
// tests replace.
type machineChooser struct {
	// offers says whether QEMU has the machine type.
	offers func(qemu.Machine) (bool, error)
	// tscKHz is the host's TSC rate (qemu.HostTSCkHz), 0 where unknown.
	tscKHz int
	// virtioMMIO says whether the initramfs has virtio-mmio's driver
	// (known false: it cannot be read, such as a compressed one).
	virtioMMIO func() (has, known bool)
}

// ChooseMachine resolves --machine (want; "" to choose) for a run under
// accel that boots initrd. An explicit type must be one QEMU offers and
// the run can boot on; the default is microvm, the fastest to boot, where
// everything it needs is there (QEMU offers it; under TCG the host's TSC
// rate, see qemu.Machine; an initramfs with virtio_mmio), else pc.
func (s State) ChooseMachine(ctx context.Context, want qemu.Machine, accel, initrd string) (qemu.Machine, error) {
	c := machineChooser{
		offers: func(m qemu.Machine) (bool, error) {
			types, err := s.machineTypes(ctx)
			return slices.Contains(types, string(m)), err
		},
		tscKHz:     qemu.HostTSCkHz(),
		virtioMMIO: func() (bool, bool) { return initrdModule(initrd, "virtio_mmio") },
	}
	return c.choose(want, accel)
}

func (c machineChooser) choose(want qemu.Machine, accel string) (qemu.Machine, error) {
	if want == "" {
		has, _ := c.virtioMMIO()
		offered, _ := c.offers(qemu.MicroVM)
		if !has || !offered || (accel == AccelTCG && c.tscKHz == 0) {
			return qemu.PC, nil
		}
		return qemu.MicroVM, nil
	}
	if want == qemu.MicroVM {
		if accel == AccelTCG && c.tscKHz == 0 {
			return "", errors.New("--machine microvm under TCG: its kernel needs the host's TSC rate, which /proc/cpuinfo does not give (bogomips); use --machine pc")
		}
		if has, known := c.virtioMMIO(); known && !has {
			return "", errors.New("--machine microvm: the initramfs has no virtio_mmio driver for microvm's devices (make image builds one that has); use --machine pc")
		}
	}
	offered, err := c.offers(want)
	if err != nil {
		return "", fmt.Errorf("--machine %s: %w", want, err)
	}
	if !offered {
		return "", fmt.Errorf("--machine %s: %s does not offer it (-M help lists what it does)", want, QEMUSystem)
	}
	return want, nil
}

// machineTypes lists the machine types of the QEMU on PATH, from the cache
// while the binary is the same.
func (s State) machineTypes(ctx context.Context) ([]string, error) {
	bin, err := exec.LookPath(QEMUSystem)
	if err != nil {
		return nil, fmt.Errorf("%s not found on PATH: install QEMU (scripts/install-deps.sh)", QEMUSystem)
	}
	st, err := os.Stat(bin)
	if err != nil {
		return nil, err
	}
	want := machineTypes{QEMU: bin, Size: st.Size(), ModTime: st.ModTime().UTC()}
	var cached machineTypes
	if b, err := os.ReadFile(s.MachineCache()); err == nil && json.Unmarshal(b, &cached) == nil &&
		cached.QEMU == want.QEMU && cached.Size == want.Size && cached.ModTime.Equal(want.ModTime) {
		return cached.Machines, nil
	}
	if want.Machines, err = qemu.MachineTypes(ctx, bin); err != nil {
		return nil, err
	}
	if b, err := json.Marshal(want); err == nil && os.MkdirAll(filepath.Dir(s.MachineCache()), 0o700) == nil {
		_ = os.WriteFile(s.MachineCache(), b, 0o600) // without the cache the next run asks again
	}
	return want.Machines, nil
}

// initrdModule says whether the initramfs at p carries the kernel module
// (its .ko, compressed or not) or lists it in modules.builtin. Only an
// uncompressed newc archive (make image's build/CONFIG.cpio) is read:
// for any other, known is false.
func initrdModule(p, module string) (has, known bool) {
	f, err := os.Open(p)
	if err != nil {
		return false, false
	}
	defer f.Close()
	magic := make([]byte, 6)
	if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != "070701" {
		return false, false // compressed, or not an archive at all
	}
	ko := module + ".ko"
	rr := cpio.Newc.Reader(f)
	for {
		rec, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return false, true
		}
		if err != nil {
			return false, false
		}
		name := path.Base(rec.Name)
		if name == ko || strings.HasPrefix(name, ko+".") {
			return true, true
		}
		if name == "modules.builtin" && rec.ReaderAt != nil {
			b, _ := io.ReadAll(io.NewSectionReader(rec.ReaderAt, 0, int64(rec.FileSize)))
			for _, builtin := range strings.Fields(string(b)) {
				if path.Base(builtin) == ko {
					return true, true
				}
			}
		}
	}
}
