package vmrun

import "github.com/ginit-dev/ginit/internal/rundoc"

// Terminal is what the guest learns of a terminal that shows its console
// (run -t).
type Terminal struct {
	// TTY: a person's terminal shows the console. The workload gets
	// TERM=xterm, as docker gives it, unless -e sets TERM.
	TTY bool
	// Size is that terminal's, which the guest's console takes: a serial
	// line cannot tell it. Nil leaves the console's size unset.
	Size *rundoc.TTY
}

// ttyTerm is the TERM docker sets for -t.
const ttyTerm = "TERM=xterm"

// document puts the terminal into doc, before the -e values so they win.
func (t Terminal) document(doc *rundoc.Document) {
	if !t.TTY {
		return
	}
	doc.Env = append([]string{ttyTerm}, doc.Env...)
	doc.TTY = t.Size
}
