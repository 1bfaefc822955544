package vmrun

import (
	"strings"
	"testing"
)

func TestMemoryMB(t *testing.T) {
	for in, want := range map[string]int{"512m": 512, "1g": 1024, "1.5g": 1536, "64M": 64, "128MiB": 128, "100000000": 96, "67108865": 65} {
		if got, err := MemoryMB(in); err != nil || got != want {
			t.Errorf("MemoryMB(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"32m": "--memory 32m: below the 64m", "lots": `--memory: size "lots"`, "": "--memory: size"} {
		if _, err := MemoryMB(in); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("MemoryMB(%q) = %v; want %q", in, err, want)
		}
	}
}

func TestCPUs(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "0.5": 1, "1.5": 2, "4": 4} {
		if got, err := cpus(in, 4); err != nil || got != want {
			t.Errorf("cpus(%q, 4 on the host) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"0": "want a number above 0", "-1": "want a number", "two": "want a number", "NaN": "want a number", "5": "this host has 4 CPUs"} {
		if _, err := cpus(in, 4); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("cpus(%q, 4 on the host) = %v; want %q", in, err, want)
		}
	}
}
