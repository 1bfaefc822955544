package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSmallestMemory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		needed int // the least memory that boots
		want   int
	}{
		{"boots at the least", 8, 8},
		{"on a step", 64, 64},
		{"between steps", 61, 64},
		{"only at the most", 256, 256},
		{"not even at the most", 300, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tried := map[int]bool{}
			boots := func(mib int) bool {
				if mib%8 != 0 || tried[mib] {
					t.Errorf("tried %d MiB (again, or off the 8 MiB steps)", mib)
				}
				tried[mib] = true
				return mib >= tc.needed
			}
			if got := smallestMemory(boots, 8, 256, 8); got != tc.want {
				t.Errorf("smallestMemory = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCountBlocks(t *testing.T) {
	log := `----------------
IN: 
0xfffffff0:  e9 8d ff                 jmp      0xff80

----------------
IN: 
0xffffffff81000000:  48 8d 25 51 3f 60 01     leaq     0x1603f51(%rip), %rsp
0xffffffff81000007:  e8 00 00 00 00           callq    0xffffffff8100000c

----------------
IN: runtime.rt0_go
0x0000000000468f20:  48 89 f8                 movq     %rdi, %rax

----------------
IN: 
0x00007ffd1e3fc7a0:  55                       pushq    %rbp
`
	got, err := countBlocks(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	// The firmware's real-mode block is below the kernel's half.
	if want := (blockCount{kernel: 1, user: 3}); got != want {
		t.Errorf("countBlocks = %+v, want %+v", got, want)
	}
	if _, err := countBlocks(strings.NewReader("IN: \n0xzz:  90  nop\n")); err == nil {
		t.Errorf("countBlocks of a bad address = nil error, want one")
	}
}

func TestQuartiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	diffs := pairedDiffs(ms(900, 1700, 1200, 1100, 2000), ms(400, 1000, 1100, 1000))
	if want := ms(500, 700, 100, 100); !slices.Equal(diffs, want) {
		t.Fatalf("pairedDiffs = %v, want %v (the fifth round has no floor)", diffs, want)
	}
	q1, med, q3 := quartiles(ms(50, 10, 40, 20, 30))
	if q1 != 20*time.Millisecond || med != 30*time.Millisecond || q3 != 40*time.Millisecond {
		t.Errorf("quartiles(10..50) = %v, %v, %v; want 20ms, 30ms, 40ms", q1, med, q3)
	}
}

func TestLogName(t *testing.T) {
	for row, want := range map[string]string{
		"ginit (minimal, xz)":                         "ginit-minimal-xz-nvme.log",
		"ginit (minimal, the same cpio uncompressed)": "ginit-minimal-the-same-cpio-uncompressed-nvme.log",
		"floor: the workload as /init":                "floor-the-workload-as-init-nvme.log",
	} {
		if got := logName(row, "nvme"); got != want {
			t.Errorf("logName(%q) = %q; want %q", row, got, want)
		}
	}
}

func TestChosenRows(t *testing.T) {
	names := func(rs []*peerRow) []string {
		var n []string
		for _, r := range rs {
			n = append(n, r.name)
		}
		return n
	}
	rows := []*peerRow{{name: "floor"}, {name: "ginit (minimal, xz)"}, {name: "ginit (minimal, the same cpio)"}, {name: "tiny-initramfs"}, {name: "booster"}}
	for _, tc := range []struct {
		prefixes string
		want     []string
	}{
		{"", []string{"floor", "ginit (minimal, xz)", "ginit (minimal, the same cpio)", "tiny-initramfs", "booster"}},
		{"tiny", []string{"floor", "tiny-initramfs"}},
		{"booster, ginit", []string{"floor", "ginit (minimal, xz)", "ginit (minimal, the same cpio)", "booster"}},
		{"dracut", []string{"floor"}},
	} {
		if got := names(chosenRows(rows, tc.prefixes)); !slices.Equal(got, tc.want) {
			t.Errorf("chosenRows(%q) = %q; want %q", tc.prefixes, got, tc.want)
		}
	}
	if got := names(rows); !slices.Equal(got, []string{"floor", "ginit (minimal, xz)", "ginit (minimal, the same cpio)", "tiny-initramfs", "booster"}) {
		t.Errorf("rows after chosenRows = %q; want them as they were", got)
	}
}
