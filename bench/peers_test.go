package main

import "testing"

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
