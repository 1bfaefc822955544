package mounts

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseTmpfsOptions(t *testing.T) {
	for _, tc := range []struct {
		opts      string
		flags     uintptr
		wantFlags uintptr
		wantData  string
		wantErr   string
	}{
		{"", TmpfsDefaults, TmpfsDefaults, "", ""},
		{"size=64m,mode=1770", TmpfsDefaults, TmpfsDefaults, "size=64m,mode=1770", ""},
		{"exec,ro", TmpfsDefaults, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_RDONLY, "", ""},
		{"rw,suid,dev,uid=1000", unix.MS_RDONLY | TmpfsDefaults, unix.MS_NOEXEC, "uid=1000", ""},
		{"noatime,,sync", 0, unix.MS_NOATIME | unix.MS_SYNCHRONOUS, "", ""},
		{"size=1m,loud", 0, 0, "", `"loud": unknown`},
		{"color=red", 0, 0, "", `"color": want one of size=`},
	} {
		flags, data, err := ParseTmpfsOptions(tc.opts, tc.flags)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseTmpfsOptions(%q) = %v; want an error containing %q", tc.opts, err, tc.wantErr)
			}
			continue
		}
		if err != nil || flags != tc.wantFlags || data != tc.wantData {
			t.Errorf("ParseTmpfsOptions(%q, %#x) = %#x, %q, %v; want %#x, %q", tc.opts, tc.flags, flags, data, err, tc.wantFlags, tc.wantData)
		}
	}
}
