package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0.0 KiB", 1536: "1.5 KiB", 1 << 20: "1.0 MiB", 3 << 29: "1536.0 MiB", 10 << 30: "10.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"1024": 1024, "512m": 512 << 20, "512M": 512 << 20, "1g": 1 << 30, "1G": 1 << 30,
		"1.5g": 3 << 29, "64mb": 64 << 20, "64MiB": 64 << 20, "2k": 2048, "100b": 100,
		"1t": 1 << 40, "0": 0, "256 m": 256 << 20,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1g", "1x", "1gg", "1e3m", "+5m", "0x10", "1.2.3m", "99999999p", "1_000m"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d; want an error", in, got)
		}
	}
}
