// Package cmdline splits a kernel command line the way the kernel does and
// splits parameter values into shell words. It is pure: no syscalls, so it is
// tested and fuzzed anywhere.
package cmdline

import (
	"strings"
)

// Param is one word of the kernel command line: key=value, or a bare key.
type Param struct {
	Key      string
	Value    string
	HasValue bool // key=value (possibly empty value), as opposed to a bare word
}

func (p Param) String() string {
	if p.HasValue {
		return p.Key + "=" + p.Value
	}
	return p.Key
}

// isSpace matches the kernel's isspace() for ASCII.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// Split parses s as the kernel's next_arg() (lib/cmdline.c, kernel/params.c)
// does: words are separated by white space outside double quotes; the key ends
// at the first '='; a value that starts with a quote loses it and a trailing
// quote; a word that starts with a quote loses it and a trailing quote. Quotes
// elsewhere stay in the text, as they do for the kernel. Everything after a
// lone "--" is for init's argv and is returned in rest.
func Split(s string) (params []Param, rest []string) {
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return params, rest
		}
		start := i
		quoted := false
		inQuote := false
		if s[i] == '"' {
			i++
			start = i
			quoted = true
			inQuote = true
		}
		equals := -1
		for ; i < len(s); i++ {
			if isSpace(s[i]) && !inQuote {
				break
			}
			if equals < 0 && s[i] == '=' {
				equals = i
			}
			if s[i] == '"' {
				inQuote = !inQuote
			}
		}
		word := s[start:i]
		var p Param
		if equals < 0 {
			p.Key = word
		} else {
			p.Key = s[start:equals]
			p.Value = s[equals+1 : i]
			p.HasValue = true
			if strings.HasPrefix(p.Value, `"`) {
				p.Value = p.Value[1:]
				p.Value = strings.TrimSuffix(p.Value, `"`)
				// The trailing quote is gone already; don't strip it twice below.
				quoted = false
			}
		}
		if quoted {
			if p.HasValue {
				p.Value = strings.TrimSuffix(p.Value, `"`)
			} else {
				p.Key = strings.TrimSuffix(p.Key, `"`)
			}
		}
		if p.Key == "--" && !p.HasValue {
			// The kernel hands the remaining words to init as arguments.
			for _, w := range strings.Fields(s[i:]) {
				rest = append(rest, w)
			}
			return params, rest
		}
		params = append(params, p)
	}
}
