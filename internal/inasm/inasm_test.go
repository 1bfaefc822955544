package inasm

import (
	"slices"
	"strings"
	"testing"
)

func TestBlocks(t *testing.T) {
	log := `----------------
IN: 
0x000fe05b:  2e 66 83 3e c8 61 00     cmpl     $0, %cs:0x61c8
0x000fe062:  0f 85 36 f0              jne      0xd09c

----------------
IN: runtime.main
0x0000000000497700:  e9 1b cf ff ff           jmp      0x494620

OUT: [size=40]
0x7f0000:  48 8b 45 00  movq (%rbp), %rax
----------------
IN: 
0xffffffff810000d3:  0f 01 15 26 9f a1 01     lgdtq    0x1a19f26(%rip)
`
	var got []uint64
	if err := Blocks(strings.NewReader(log), func(a uint64) { got = append(got, a) }); err != nil {
		t.Fatal(err)
	}
	want := []uint64{0xfe05b, 0x497700, 0xffffffff810000d3}
	if !slices.Equal(got, want) {
		t.Errorf("Blocks = %#x; want %#x (a block's first instruction only, nothing outside IN:)", got, want)
	}
	if got[2] < KernelSpace || got[1] >= KernelSpace {
		t.Errorf("KernelSpace %#x does not part %#x from %#x", uint64(KernelSpace), got[1], got[2])
	}
	if err := Blocks(strings.NewReader("IN: \n0xzz:  90  nop\n"), func(uint64) {}); err == nil {
		t.Error("Blocks(bad address) = nil; want an error naming it")
	}
}
