package osfind

import "strings"

// compareVersions compares two version strings as rpm does, which is how
// people read them: separators are skipped, runs of digits compare by
// value, runs of letters byte by byte, and a number is newer than letters
// (6.1.0-18-amd64 is newer than 6.1.0-9-amd64, 6.1.0-1 than 6.1.0-rc1). It
// returns -1, 0 or 1.
func compareVersions(a, b string) int {
	for {
		a, b = strings.TrimLeftFunc(a, notAlnum), strings.TrimLeftFunc(b, notAlnum)
		if a == "" || b == "" {
			return cmp(len(a), len(b))
		}
		digits := isDigit(a[0])
		if isDigit(b[0]) != digits {
			if digits {
				return 1
			}
			return -1
		}
		var ra, rb string
		ra, a = leadingRun(a, digits)
		rb, b = leadingRun(b, digits)
		if digits {
			ra, rb = strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if len(ra) != len(rb) {
				return cmp(len(ra), len(rb))
			}
		}
		if c := strings.Compare(ra, rb); c != 0 {
			return c
		}
	}
}

func cmp(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func notAlnum(r rune) bool { return r >= 0x80 || !(isDigit(byte(r)) || isLetter(byte(r))) }

// leadingRun splits s after its leading run of digits (or of letters).
func leadingRun(s string, digits bool) (run, rest string) {
	i := 0
	for i < len(s) && (digits && isDigit(s[i]) || !digits && isLetter(s[i])) {
		i++
	}
	return s[:i], s[i:]
}

// isNameByte says whether c may be in a variable's name.
func isNameByte(c byte) bool { return c == '_' || isDigit(c) || isLetter(c) }
