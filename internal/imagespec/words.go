package imagespec

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrUnterminatedQuote is returned by Words for a quote that never closes.
var ErrUnterminatedQuote = errors.New("unterminated quote")

// ErrTrailingBackslash is returned by Words for a backslash at the very end.
var ErrTrailingBackslash = errors.New("trailing backslash")

// Words splits s into words as a POSIX shell would, without any expansion:
// blanks (space, tab, newline) separate words; single quotes keep
// everything; double quotes keep everything but the escapes \" \\ \$ \`
// and a backslash-newline, which is dropped; outside quotes a backslash
// escapes the next character, and a backslash-newline joins lines. This is
// how entrypoint=, ginit.cmd= and oci2disk's --entrypoint and --cmd read
// a command.
func Words(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("%q: %w", s, ErrTrailingBackslash)
			}
			i++
			if s[i] == '\n' {
				continue // a line continuation
			}
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%q: %w", s, ErrUnterminatedQuote)
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%q: %w", s, ErrUnterminatedQuote)
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// ParseCommand reads a command given as text, as Dockerfile's exec and
// shell forms are written: a JSON array of strings when it starts with
// "[", else Words. An empty value is an empty command.
func ParseCommand(s string) ([]string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") {
		var v []string
		if err := json.Unmarshal([]byte(t), &v); err != nil {
			return nil, fmt.Errorf("%q: not a JSON array of strings: %w", s, err)
		}
		return v, nil
	}
	return Words(s)
}
