package main

import (
	"testing"
)

// The probe builds, and the bench finds each of its called functions in
// its symbols: the block count depends on both.
func TestTCGProbeFuncs(t *testing.T) {
	const n = 50
	bin, err := buildTCGProbe(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := probeFuncs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != n {
		t.Fatalf("probeFuncs(%s) = %d functions; want %d", bin, len(rs), n)
	}
	for i, r := range rs {
		if r.end <= r.start {
			t.Fatalf("range %d = %#x-%#x: empty", i, r.start, r.end)
		}
		if i > 0 && r.start < rs[i-1].end {
			t.Fatalf("range %d = %#x-%#x overlaps the one before, which ends at %#x", i, r.start, r.end, rs[i-1].end)
		}
		if !inRanges(rs, r.start) || !inRanges(rs, r.end-1) {
			t.Errorf("inRanges(%#x or %#x) = false; want true (range %d)", r.start, r.end-1, i)
		}
		if inRanges(rs, r.end) && (i == len(rs)-1 || rs[i+1].start != r.end) {
			t.Errorf("inRanges(%#x) = true, the byte after range %d", r.end, i)
		}
	}
	if inRanges(rs, rs[0].start-1) {
		t.Errorf("inRanges(%#x) = true, before the first function", rs[0].start-1)
	}
}
