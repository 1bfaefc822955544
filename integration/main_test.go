package integration

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the disk tool the tests built once they are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if oci2diskPath != "" {
		os.RemoveAll(filepath.Dir(oci2diskPath))
	}
	os.Exit(code)
}
