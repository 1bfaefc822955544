// Package testenv decides what a test does when something it needs is
// missing: root, a host tool, a file that `make` builds. Outside CI it skips
// and says why. Under `make test` (GINIT_VM_TESTS=1, as .ci/run sets it) a
// missing need fails the test instead, so a test cannot vanish from CI by
// skipping.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Strict reports whether every need is a must: `make test` sets
// GINIT_VM_TESTS=1.
func Strict() bool { return os.Getenv("GINIT_VM_TESTS") == "1" }

// Missing skips the test with why, or fails it when Strict.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (GINIT_VM_TESTS=1: a missing need fails the test)", msg)
	}
	t.Skip(msg)
}

// NeedRoot needs uid 0; why says what the test does with it.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root: %s", why)
	}
}

// NeedTools needs every named program on PATH.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		Missing(t, "needs %s on PATH (scripts/install-deps.sh installs them)", strings.Join(missing, ", "))
	}
}

// NeedFile needs path to exist; how says what makes it.
func NeedFile(t testing.TB, path, how string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "needs %s: %s", path, how)
	}
}
