package osfind

import (
	"fmt"
	"strings"
)

// GRUB's configuration language is a small shell. This file reads it into
// statements: words with quoting and $variables kept apart (they expand when
// the statement runs), if/elif/else/fi, loops (read, never run), functions,
// and the menuentry and submenu blocks. grub.go runs them.

// gpart is a piece of a word: literal text, or a variable to expand.
type gpart struct {
	s      string
	isVar  bool
	quoted bool // inside quotes: an expansion is not split into words
}

// gword is one word of a command, before expansion.
type gword struct {
	parts []gpart
	bare  bool // no quotes, escapes or variables: can be a keyword
}

// text is the word's literal text when it is bare.
func (w gword) text() string {
	if !w.bare {
		return ""
	}
	var b strings.Builder
	for _, p := range w.parts {
		b.WriteString(p.s)
	}
	return b.String()
}

// expand returns the words w becomes with the variables get gives: an
// unquoted expansion splits at white space, and an unquoted empty one
// leaves no word at all.
func (w gword) expand(get func(string) string) []string {
	var (
		out  []string
		cur  strings.Builder
		have bool
	)
	flush := func() {
		if have {
			out = append(out, cur.String())
		}
		cur.Reset()
		have = false
	}
	for _, p := range w.parts {
		if !p.isVar {
			cur.WriteString(p.s)
			have = true
			continue
		}
		v := get(p.s)
		if p.quoted {
			cur.WriteString(v)
			have = true
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		if isBlank(v[0]) {
			flush()
		}
		for i, f := range fields {
			if i > 0 {
				flush()
			}
			cur.WriteString(f)
			have = true
		}
		if isBlank(v[len(v)-1]) {
			flush()
		}
	}
	flush()
	return out
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

type tokKind int

const (
	tWord  tokKind = iota
	tSep           // newline or ;
	tOpen          // {
	tClose         // }
)

type token struct {
	kind tokKind
	w    gword
	line int
}

// lexGrub splits a config into tokens.
func lexGrub(src string) ([]token, error) {
	var (
		toks   []token
		line   = 1
		word   gword
		inWord bool
	)
	addText := func(s string, quoted bool) {
		inWord = true
		if n := len(word.parts); n > 0 && !word.parts[n-1].isVar && word.parts[n-1].quoted == quoted {
			word.parts[n-1].s += s
			return
		}
		word.parts = append(word.parts, gpart{s: s, quoted: quoted})
	}
	endWord := func() {
		if !inWord {
			return
		}
		t := token{kind: tWord, w: word, line: line}
		switch word.text() {
		case "{":
			t.kind = tOpen
		case "}":
			t.kind = tClose
		}
		toks = append(toks, t)
		word, inWord = gword{bare: true}, false
	}
	word.bare = true
	// variable reads $name, ${name}, $1, $? at src[i] == '$' and returns
	// the name and the index after it; ok is false for a lone '$'.
	variable := func(i int) (string, int, bool) {
		j := i + 1
		if j < len(src) && src[j] == '{' {
			end := strings.IndexByte(src[j:], '}')
			if end < 0 {
				return "", i + 1, false
			}
			return src[j+1 : j+end], j + end + 1, true
		}
		if j < len(src) && strings.IndexByte("?#@*", src[j]) >= 0 {
			return src[j : j+1], j + 1, true
		}
		k := j
		for k < len(src) && isNameByte(src[k]) {
			k++
		}
		if k == j {
			return "", i + 1, false
		}
		return src[j:k], k, true
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			endWord()
			toks = append(toks, token{kind: tSep, line: line})
			line++
			i++
		case c == ';':
			endWord()
			toks = append(toks, token{kind: tSep, line: line})
			i++
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
			i++
		case c == '#' && !inWord:
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\\':
			if i+1 < len(src) && src[i+1] == '\n' {
				line++
				i += 2
				continue
			}
			if i+1 < len(src) {
				word.bare = false
				addText(src[i+1:i+2], true)
				i += 2
				continue
			}
			i++
		case c == '\'':
			end := strings.IndexByte(src[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated single quote", line)
			}
			s := src[i+1 : i+1+end]
			line += strings.Count(s, "\n")
			word.bare = false
			addText(s, true)
			i += end + 2
		case c == '"':
			word.bare = false
			addText("", true)
			start := line
			i++
			for {
				if i >= len(src) {
					return nil, fmt.Errorf("line %d: unterminated double quote", start)
				}
				d := src[i]
				if d == '"' {
					i++
					break
				}
				if d == '\\' && i+1 < len(src) && strings.IndexByte("$\"\\\n", src[i+1]) >= 0 {
					if src[i+1] == '\n' {
						line++
					} else {
						addText(src[i+1:i+2], true)
					}
					i += 2
					continue
				}
				if d == '$' {
					if name, next, ok := variable(i); ok {
						word.parts = append(word.parts, gpart{s: name, isVar: true, quoted: true})
						i = next
						continue
					}
				}
				if d == '\n' {
					line++
				}
				addText(src[i:i+1], true)
				i++
			}
		case c == '$':
			if name, next, ok := variable(i); ok {
				word.bare = false
				inWord = true
				word.parts = append(word.parts, gpart{s: name, isVar: true})
				i = next
				continue
			}
			addText("$", false)
			i++
		default:
			addText(src[i:i+1], false)
			i++
		}
	}
	endWord()
	return toks, nil
}

type stmtKind int

const (
	sSimple stmtKind = iota
	sIf
	sBlock // menuentry, submenu, function; a bare { } group
	sLoop  // for, while, until: read, not run
)

// stmt is one statement of a GRUB script.
type stmt struct {
	kind stmtKind
	line int
	args []gword // sSimple: the command; sBlock: the header (menuentry 'x' --id y)
	body []stmt  // sBlock
	// sIf: conds[i] chooses thens[i]; els runs when none does.
	conds, thens [][]stmt
	els          []stmt
}

// parseGrub reads a whole config.
func parseGrub(src string) ([]stmt, error) {
	toks, err := lexGrub(src)
	if err != nil {
		return nil, err
	}
	p := &gparser{toks: toks}
	stmts, stop, err := p.list()
	if err != nil {
		return nil, err
	}
	if stop == "}" {
		return nil, fmt.Errorf("line %d: } without {", p.toks[p.pos].line)
	}
	return stmts, nil
}

type gparser struct {
	toks []token
	pos  int
}

// list reads statements up to one of the keywords stop (at the start of a
// command, consumed and returned), a } (not consumed; stop is "}"), or the
// end (stop is "").
func (p *gparser) list(stop ...string) ([]stmt, string, error) {
	var out []stmt
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		switch t.kind {
		case tSep:
			p.pos++
			continue
		case tClose:
			return out, "}", nil
		case tOpen:
			p.pos++
			body, err := p.block(t.line)
			if err != nil {
				return nil, "", err
			}
			out = append(out, stmt{kind: sBlock, line: t.line, body: body})
			continue
		}
		kw := t.w.text()
		for _, s := range stop {
			if kw == s {
				p.pos++
				return out, s, nil
			}
		}
		var (
			st  stmt
			err error
		)
		switch kw {
		case "if":
			st, err = p.ifStmt()
		case "while", "until":
			st, err = p.loop(false)
		case "for":
			st, err = p.loop(true)
		case "function":
			st, err = p.function()
		case "then", "elif", "else", "fi", "do", "done":
			return nil, "", fmt.Errorf("line %d: %s without its opening keyword", t.line, kw)
		default:
			st, err = p.simple()
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, st)
	}
	return out, "", nil
}

// block reads a body after { up to its }.
func (p *gparser) block(line int) ([]stmt, error) {
	body, stop, err := p.list()
	if err != nil {
		return nil, err
	}
	if stop != "}" {
		return nil, fmt.Errorf("line %d: { without }", line)
	}
	p.pos++
	return body, nil
}

func (p *gparser) simple() (stmt, error) {
	st := stmt{kind: sSimple, line: p.toks[p.pos].line}
	for p.pos < len(p.toks) && p.toks[p.pos].kind == tWord {
		st.args = append(st.args, p.toks[p.pos].w)
		p.pos++
	}
	if p.pos < len(p.toks) && p.toks[p.pos].kind == tOpen {
		switch st.args[0].text() {
		case "menuentry", "submenu":
			p.pos++
			body, err := p.block(st.line)
			if err != nil {
				return stmt{}, fmt.Errorf("%s: %w", st.args[0].text(), err)
			}
			st.kind, st.body = sBlock, body
		}
	}
	return st, nil
}

func (p *gparser) ifStmt() (stmt, error) {
	st := stmt{kind: sIf, line: p.toks[p.pos].line}
	p.pos++ // if
	for {
		cond, stop, err := p.list("then")
		if err != nil {
			return stmt{}, err
		}
		if stop != "then" {
			return stmt{}, fmt.Errorf("line %d: if without then", st.line)
		}
		body, stop, err := p.list("elif", "else", "fi")
		if err != nil {
			return stmt{}, err
		}
		st.conds, st.thens = append(st.conds, cond), append(st.thens, body)
		switch stop {
		case "elif":
			continue
		case "else":
			els, stop, err := p.list("fi")
			if err != nil {
				return stmt{}, err
			}
			if stop != "fi" {
				return stmt{}, fmt.Errorf("line %d: if without fi", st.line)
			}
			st.els = els
			return st, nil
		case "fi":
			return st, nil
		}
		return stmt{}, fmt.Errorf("line %d: if without fi", st.line)
	}
}

func (p *gparser) loop(isFor bool) (stmt, error) {
	st := stmt{kind: sLoop, line: p.toks[p.pos].line}
	p.pos++
	if isFor {
		for p.pos < len(p.toks) && p.toks[p.pos].kind == tWord {
			p.pos++
		}
	}
	if _, stop, err := p.list("do"); err != nil {
		return stmt{}, err
	} else if stop != "do" {
		return stmt{}, fmt.Errorf("line %d: loop without do", st.line)
	}
	body, stop, err := p.list("done")
	if err != nil {
		return stmt{}, err
	}
	if stop != "done" {
		return stmt{}, fmt.Errorf("line %d: loop without done", st.line)
	}
	st.body = body
	return st, nil
}

func (p *gparser) function() (stmt, error) {
	line := p.toks[p.pos].line
	p.pos++
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != tWord {
		return stmt{}, fmt.Errorf("line %d: function without a name", line)
	}
	name := p.toks[p.pos].w
	p.pos++
	for p.pos < len(p.toks) && p.toks[p.pos].kind == tSep {
		p.pos++
	}
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != tOpen {
		return stmt{}, fmt.Errorf("line %d: function %s without {", line, name.text())
	}
	p.pos++
	body, err := p.block(line)
	if err != nil {
		return stmt{}, err
	}
	fn := gword{parts: []gpart{{s: "function"}}, bare: true}
	return stmt{kind: sBlock, line: line, args: []gword{fn, name}, body: body}, nil
}
