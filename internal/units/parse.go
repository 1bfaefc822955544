package units

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseBytes reads a size as docker's --memory takes it: a number, whole
// or decimal, then an optional unit b, k, m, g, t or p (any case, binary
// multiples, an optional "i" and "b" after it: 512m, 1g, 1.5GiB, 64mb); a
// bare number is bytes.
func ParseBytes(s string) (int64, error) {
	num := strings.TrimRight(s, "bBiIkKmMgGtTpP ")
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	shift, ok := map[string]uint{
		"": 0, "b": 0,
		"k": 10, "kb": 10, "kib": 10,
		"m": 20, "mb": 20, "mib": 20,
		"g": 30, "gb": 30, "gib": 30,
		"t": 40, "tb": 40, "tib": 40,
		"p": 50, "pb": 50, "pib": 50,
	}[unit]
	if !ok || num == "" || strings.ContainsAny(num, "+-eE_ ") {
		return 0, fmt.Errorf("size %q: want a number and a unit b, k, m, g, t or p (512m, 1g)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("size %q: want a number and a unit b, k, m, g, t or p (512m, 1g)", s)
	}
	n := f * float64(int64(1)<<shift)
	if n >= 1<<63 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(n), nil
}
