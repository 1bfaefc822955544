package qemu

import (
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/testenv"
)

// The probe's boot sector runs under TCG, which works everywhere: a
// failing probe then means the accelerator, not the sector.
func TestProbeTCG(t *testing.T) {
	testenv.NeedTools(t, "qemu-system-x86_64")
	if err := Probe(t.Context(), "tcg", 60*time.Second); err != nil {
		t.Errorf("Probe(tcg) = %v; want the sector to run", err)
	}
	if err := Probe(t.Context(), "nosuch", 60*time.Second); err == nil || !strings.Contains(err.Error(), "probe nosuch: qemu:") {
		t.Errorf("Probe(nosuch) = %v; want QEMU's error", err)
	}
}
