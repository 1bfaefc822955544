package imagespec

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/testenv"
)

func atime(t *testing.T, p string) time.Time {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return time.Unix(st.Atim.Unix())
}

// The machine's own reads of a root's files leave their access times, which
// on a disk made from an image are old enough that any read would write.
func TestReadRootFileKeepsAtime(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	mk := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(`{"config":{}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A plain read must move an old atime here, or the test shows nothing.
	control := mk("control")
	if _, err := os.ReadFile(control); err != nil {
		t.Fatal(err)
	}
	if atime(t, control).Equal(old) {
		testenv.Missing(t, "%s is mounted so that reads keep access times (noatime): nothing to tell apart", dir)
	}
	p := mk("image.json")
	b, err := ReadRootFile(p)
	if err != nil || string(b) != `{"config":{}}` {
		t.Fatalf("ReadRootFile(%s) = %q, %v; want the file", p, b, err)
	}
	if got := atime(t, p); !got.Equal(old) {
		t.Errorf("atime of %s after ReadRootFile = %v; want %v, as before", p, got, old)
	}
	if _, err := ReadRootFile(filepath.Join(dir, "none")); !os.IsNotExist(err) {
		t.Errorf("ReadRootFile(none) error = %v; want not exist", err)
	}
}
