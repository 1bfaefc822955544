package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLinuxbootTable(t *testing.T) {
	urootConfig = "../uroot.json"
	build := t.TempDir()
	for name, size := range map[string]int{"linuxboot.cpio": 12 << 20, "linuxboot.cpio.xz": 3 << 20, "minimal.cpio": 5 << 20, "minimal.cpio.xz": 1 << 20} {
		if err := os.WriteFile(filepath.Join(build, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	linuxbootTable(&b, options{build: build, configs: []string{"minimal", "debug", "linuxboot"}})
	out := b.String()
	for _, want := range []string{
		"| linuxboot | 12.00 MiB | 3.00 MiB | 4.00 MiB | 75.0 % | 1.00 MiB |",
		"| minimal | 5.00 MiB | 1.00 MiB | 1.50 MiB | 66.7 % | 0.50 MiB |",
		"make sizes CONFIG=linuxboot",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("linuxbootTable() =\n%s\nwant a line with %q", out, want)
		}
	}
	if strings.Contains(out, "| debug |") {
		t.Errorf("linuxbootTable() =\n%s\nwant no row for debug, which has no budget", out)
	}
	if strings.Index(out, "| linuxboot |") > strings.Index(out, "| minimal |") {
		t.Errorf("linuxbootTable(): linuxboot is not the first row:\n%s", out)
	}

	b.Reset()
	linuxbootTable(&b, options{build: build, configs: []string{"minimal"}})
	if !strings.Contains(b.String(), "| linuxboot | not built in this run") {
		t.Errorf("linuxbootTable(-configs minimal) =\n%s\nwant linuxboot marked as not built", b.String())
	}
}
