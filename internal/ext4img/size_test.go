package ext4img

import "testing"

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"64M": 64 << 20, "64m": 64 << 20, "1G": 1 << 30, "1GiB": 1 << 30, "512k": 512 << 10,
		"100MB": 100 << 20, "1.5G": 3 << 29, "4096": 4096, " 2T ": 2 << 40, "0": 0,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "12X", "-1M", "1..2G", "1e3"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d; want an error", in, got)
		}
	}
}

func TestUUID(t *testing.T) {
	const s = "01234567-89ab-cdef-0123-456789abcdef"
	u, err := ParseUUID(s)
	if err != nil || FormatUUID(u) != s {
		t.Errorf("FormatUUID(ParseUUID(%q)) = %q, %v", s, FormatUUID(u), err)
	}
	for _, bad := range []string{"", "0123456789abcdef0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdeg"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q): want an error", bad)
		}
	}
}

func TestLayout(t *testing.T) {
	for _, c := range []Content{{}, {Inodes: 10, Blocks: 10}, {Inodes: 50000, Blocks: 12800}, {Inodes: 200000, Blocks: 2 << 20}} {
		for _, free := range []int64{0, 64 << 20, 1 << 30} {
			l := AutoLayout(c, free)
			b := l.Size / BlockSize
			if l.Size%(1<<20) != 0 || b < minBlocks {
				t.Errorf("AutoLayout(%+v, %d).Size = %d; want a multiple of 1 MiB, at least %d blocks", c, free, l.Size, minBlocks)
			}
			if room := b - overhead(b, l.Inodes) - c.Blocks; room*BlockSize < free {
				t.Errorf("AutoLayout(%+v, %d) = %+v leaves %d bytes; want at least %d", c, free, l, room*BlockSize, free)
			}
			if l.Inodes < c.Inodes+free/inodeRatio {
				t.Errorf("AutoLayout(%+v, %d).Inodes = %d; too few", c, free, l.Inodes)
			}
		}
	}
	if _, err := FixedLayout(Content{Inodes: 10, Blocks: 100000}, 64<<20); err == nil {
		t.Errorf("FixedLayout of 400 MB into 64 MiB: want an error")
	}
	if l, err := FixedLayout(Content{Inodes: 10, Blocks: 10}, 64<<20); err != nil || l.Size != 64<<20 {
		t.Errorf("FixedLayout(small, 64M) = %+v, %v", l, err)
	}
}
