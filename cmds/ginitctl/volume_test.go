package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVolumeCmd(t *testing.T) {
	state := t.TempDir()
	if err := os.MkdirAll(filepath.Join(state, "volumes", "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "volumes", "data", "disk.img"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args       []string
		status     int
		out, errs  string
		dataRemain bool
	}{
		{[]string{"ls", "--state", state}, 0, "NAME  SIZE\ndata  ", "", true},
		{[]string{"--state", state, "ls"}, 0, "data", "", true},
		{[]string{"--state", state}, 125, "", "want ls, or rm NAME", true},
		{[]string{"rm", "--state", state, "nosuch"}, 125, "", "volume nosuch: open", true},
		{[]string{"rm", "--state", state, "../x"}, 125, "", `volume name "../x"`, true},
		{[]string{"rm", "--state", state, "data"}, 0, "data\n", "", false},
	} {
		var out, errs strings.Builder
		status := volumeCmd(tc.args, &out, &errs)
		if status != tc.status || !strings.Contains(out.String(), tc.out) || !strings.Contains(errs.String(), tc.errs) {
			t.Errorf("volume %q = %d, %q, %q; want %d, %q, %q", tc.args, status, out.String(), errs.String(), tc.status, tc.out, tc.errs)
		}
		if _, err := os.Stat(filepath.Join(state, "volumes", "data")); (err == nil) != tc.dataRemain {
			t.Errorf("after volume %q: data there = %v; want %v", tc.args, err == nil, tc.dataRemain)
		}
	}
}
