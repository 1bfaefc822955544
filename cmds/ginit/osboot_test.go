package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/bootcfg"
)

func TestOsbootArgs(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		auto    bool
		want    string
	}{
		{"ginit.mode=boot", false, "osboot -load -wait 10s"},
		{"ginit.mode=boot rootwait", false, "osboot -load -wait 24h0m0s"},
		{"ginit.mode=boot ginit.rootwait=2s osboot.entry=1 osboot.append=console=ttyS0", false, "osboot -load -wait 2s -entry 1 -append console=ttyS0"},
		{`ginit.mode=boot osboot.entry="Debian GNU/Linux" osboot.append="console=ttyS0 quiet"`, false, "osboot -load -wait 10s -entry Debian GNU/Linux -append console=ttyS0 quiet"},
		// GRUB menu paths, as GRUB_DEFAULT takes them, pass as they are.
		{"ginit.mode=boot osboot.entry=gnulinux-advanced-U>gnulinux-6.1.0-28-amd64-advanced-U", false, "osboot -load -wait 10s -entry gnulinux-advanced-U>gnulinux-6.1.0-28-amd64-advanced-U"},
		{`ginit.mode=boot osboot.entry="Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-28-amd64"`, false, "osboot -load -wait 10s -entry Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-28-amd64"},
		{"ginit.mode=boot osboot.entry=1>0", false, "osboot -load -wait 10s -entry 1>0"},
		// In auto mode ginit has waited for the container disk already.
		{"ginit.rootwait=30s", true, "osboot -load -wait 0s"},
	} {
		cfg, warns := bootcfg.Parse(tc.cmdline)
		if len(warns) > 0 {
			t.Errorf("%s: warnings %v", tc.cmdline, warns)
		}
		if got := strings.Join(osbootArgs(cfg, tc.auto), " "); got != tc.want {
			t.Errorf("osbootArgs(%s, auto %v) = %q; want %q", tc.cmdline, tc.auto, got, tc.want)
		}
	}
	if got := bootcfg.Defaults().RootWait; got != 10*time.Second {
		t.Errorf("default rootwait %v; the table above assumes 10s", got)
	}
}

func TestOsbootError(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		code   int
		want   string
	}{
		{"osboot: no operating system found on the disks: no block devices\n", 1, "no operating system found on the disks: no block devices"},
		{"some warning\nosboot: no entry loaded: [0] x: bad\n\n", 1, "no entry loaded: [0] x: bad"},
		{"", 2, "/bbin/osboot exited with status 2"},
		{"panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n", 2, "/bbin/osboot: panic: boom"},
	} {
		if got := osbootError(tc.stderr, tc.code).Error(); got != tc.want {
			t.Errorf("osbootError(%q, %d) = %q; want %q", tc.stderr, tc.code, got, tc.want)
		}
	}
}

func TestCappedBuffer(t *testing.T) {
	var c cappedBuffer
	big := strings.Repeat("x", maxStderr-3)
	for _, s := range []string{big, "abcdef", "more"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Errorf("Write(%d bytes) = %d, %v; want %d, nil", len(s), n, err, len(s))
		}
	}
	if got, want := string(c.b), big+"abc"; got != want {
		t.Errorf("kept %d bytes ending %q; want %d ending %q", len(got), got[len(got)-5:], len(want), want[len(want)-5:])
	}
}
