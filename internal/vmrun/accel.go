package vmrun

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

// The accelerators --accel takes.
const (
	AccelAuto = "auto" // KVM where a probe boot shows it works, else TCG
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// probeTimeout bounds the KVM probe: under KVM its boot takes a fraction
// of a second; on hosts where KVM hangs guests it would never end.
const probeTimeout = 3 * time.Second

// CheckAccel reports whether --accel names an accelerator.
func CheckAccel(accel string) error {
	switch accel {
	case AccelAuto, AccelKVM, AccelTCG:
		return nil
	}
	return fmt.Errorf("--accel %q: want kvm, tcg or auto", accel)
}

// accelAnswer is the probe's answer as the state directory caches it, for
// one boot of the host: a reboot may bring another kernel or module.
type accelAnswer struct {
	BootID string `json:"boot_id"`
	Accel  string `json:"accel"`
	Why    string `json:"why,omitempty"` // why not KVM
}

// accelChooser resolves --accel; its fields are the seams tests replace.
type accelChooser struct {
	cache  string                          // the cached answer's file
	bootID string                          // this boot of the host
	kvmDev string                          // /dev/kvm
	probe  func(ctx context.Context) error // a boot under KVM
}

// ChooseAccel resolves --accel for a run: kvm and tcg as given (kvm needs
// /dev/kvm), auto to KVM only where a probe VM really boots under it,
// asked once per boot of the host and cached in the state directory.
// note, when not empty, says why auto chose TCG the first time it did.
func (s State) ChooseAccel(ctx context.Context, want string) (accel, note string, err error) {
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	c := accelChooser{
		cache:  s.AccelCache(),
		bootID: strings.TrimSpace(string(boot)),
		kvmDev: "/dev/kvm",
		probe:  func(ctx context.Context) error { return qemu.Probe(ctx, AccelKVM, probeTimeout) },
	}
	return c.choose(ctx, want)
}

func (c accelChooser) choose(ctx context.Context, want string) (accel, note string, err error) {
	if err := CheckAccel(want); err != nil {
		return "", "", err
	}
	if want == AccelTCG {
		return AccelTCG, "", nil
	}
	f, kvmErr := os.OpenFile(c.kvmDev, os.O_RDWR, 0)
	if kvmErr == nil {
		f.Close()
	}
	if want == AccelKVM {
		if kvmErr != nil {
			return "", "", fmt.Errorf("--accel kvm: %w", kvmErr)
		}
		return AccelKVM, "", nil
	}
	if kvmErr != nil {
		return AccelTCG, "", nil // no KVM here: nothing to probe or to say
	}
	var cached accelAnswer
	if b, err := os.ReadFile(c.cache); err == nil && json.Unmarshal(b, &cached) == nil &&
		c.bootID != "" && cached.BootID == c.bootID && CheckAccel(cached.Accel) == nil {
		return cached.Accel, "", nil
	}
	answer := accelAnswer{BootID: c.bootID, Accel: AccelKVM}
	if err := c.probe(ctx); err != nil {
		if ctx.Err() != nil {
			return "", "", fmt.Errorf("--accel auto: %w", ctx.Err())
		}
		answer.Accel, answer.Why = AccelTCG, err.Error()
		note = fmt.Sprintf("KVM does not work here (%v): using TCG, which is slower; the answer is kept in %s until the host reboots", err, c.cache)
	}
	if b, err := json.Marshal(answer); err == nil && os.MkdirAll(filepath.Dir(c.cache), 0o700) == nil {
		_ = os.WriteFile(c.cache, b, 0o600) // without the cache the next run probes again
	}
	return answer.Accel, note, nil
}
