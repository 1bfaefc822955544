package main

import (
	"fmt"
	"io"
	"time"

	"github.com/ginit-dev/ginit/internal/units"
)

// lineProgress prints where a step is at most once a second, and when it
// ends: a serial console has no room for a bar.
type lineProgress struct {
	w           io.Writer
	step        string
	n, total    int64
	start, last time.Time
}

func newProgress(w io.Writer) *lineProgress { return &lineProgress{w: w} }

func (p *lineProgress) Start(step string, total int64) {
	p.step, p.n, p.total = step, 0, total
	p.start, p.last = time.Now(), time.Now()
}

func (p *lineProgress) Add(n int64) {
	p.n += n
	if time.Since(p.last) >= time.Second {
		p.last = time.Now()
		p.print("")
	}
}

func (p *lineProgress) Done() {
	if p.step != "" {
		p.print(fmt.Sprintf(" in %.1fs", time.Since(p.start).Seconds()))
	}
	p.step = ""
}

func (p *lineProgress) print(suffix string) {
	if p.total > 0 {
		fmt.Fprintf(p.w, "ocipull: %s: %s of %s (%d%%)%s\n", p.step, units.Bytes(p.n), units.Bytes(p.total), p.n*100/p.total, suffix)
		return
	}
	fmt.Fprintf(p.w, "ocipull: %s: %s%s\n", p.step, units.Bytes(p.n), suffix)
}
