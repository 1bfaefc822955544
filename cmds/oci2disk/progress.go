package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ginit-dev/ginit/internal/imagesrc"
	"github.com/ginit-dev/ginit/internal/units"
)

// newProgress returns a progress bar on a terminal, plain lines otherwise.
func newProgress(w io.Writer) imagesrc.Progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w}
}

// barProgress draws one bar per step.
type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (p *barProgress) Start(step string, total int64) {
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("oci2disk: "+step),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
	)
}

func (p *barProgress) Add(n int64) {
	if p.bar != nil {
		p.bar.Add64(n)
	}
}

func (p *barProgress) Done() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}

// lineProgress prints a line when a step ends.
type lineProgress struct {
	w     io.Writer
	step  string
	n     int64
	start time.Time
}

func (p *lineProgress) Start(step string, total int64) {
	p.step, p.n, p.start = step, 0, time.Now()
}

func (p *lineProgress) Add(n int64) { p.n += n }

func (p *lineProgress) Done() {
	if p.step == "" {
		return
	}
	fmt.Fprintf(p.w, "oci2disk: %s: %s in %.2fs\n", p.step, units.Bytes(p.n), time.Since(p.start).Seconds())
	p.step = ""
}
