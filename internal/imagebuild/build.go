package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/u-root/mkuimage/cpio"
)

// Options say what to build and where.
type Options struct {
	// Config is the name of the config in URootConfig to build.
	Config string
	// URootConfig is the path of uroot.json. u-root runs in its
	// directory, which must be the Go module's root: the config's
	// relative paths (./cmds/..., templates/...) are taken from there.
	URootConfig string
	// KernelModules is a kernel's module directory, .../lib/modules/<release>.
	// Empty builds an image without kernel modules.
	KernelModules string
	// OutDir receives NAME.cpio and its compressed forms.
	OutDir string
	// StrictModules makes a requested module that the kernel has neither
	// as a file nor built in an error instead of a warning.
	StrictModules bool
	// IgnoreBudget writes the image even when it is over its xz budget.
	IgnoreBudget bool
	// SizeTable prints the table of what takes the space even when the
	// image is within its budget.
	SizeTable bool
	// Modules, when not nil, replaces the config's module list (to try
	// a smaller or larger set of drivers).
	Modules []string
	// Budget, when positive, replaces the config's xz budget.
	Budget int64
	// Verbose passes u-root's own output through to Logf.
	Verbose bool
	// GoCommand runs `go tool u-root` and `go list`; default "go".
	GoCommand string
	// Logf prints progress and warnings, one line a call; default: none.
	Logf func(format string, args ...any)

	// Seams for tests: run u-root with args in dir; list the gbb
	// commands' packages. Nil: the real ones.
	runTool      func(ctx context.Context, dir string, args []string) error
	listCommands func(ctx context.Context) ([]GoCommand, error)
}

// Result describes a finished build.
type Result struct {
	Config   string
	Settings Settings
	// Outputs are the files written, NAME.cpio first.
	Outputs []string
	// Sizes in bytes of the archive and of its compressed forms (both are
	// measured, whichever the settings ask to write).
	Raw, GZ, XZ int64
	// Entries is the number of entries in the archive.
	Entries int
	// Modules is nil when the image was built without kernel modules.
	Modules *Modules
	// URootTime is the time u-root took to compile; Total the whole build.
	URootTime, Total time.Duration
	// Sizes tells what takes the space, when it was measured (over
	// budget, or Options.SizeTable); Table is it as text.
	Sizes *SizeReport
	Table string
}

// ErrOverBudget is wrapped by the error Build returns for an image whose
// xz size is over its budget.
var ErrOverBudget = errors.New("image over its xz size budget")

// Build builds the image opts describe. See the package documentation.
func Build(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.Config == "" {
		return nil, errors.New("no config name given")
	}
	cfgPath, err := filepath.Abs(opts.URootConfig)
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w", opts.URootConfig, err)
	}
	settings, err := LoadSettings(cfgPath, opts.Config)
	if err != nil {
		return nil, err
	}
	if opts.Modules != nil {
		settings.Modules = opts.Modules
	}
	if opts.Budget > 0 {
		settings.BudgetXZBytes = opts.Budget
	}
	if err := settings.validate(); err != nil {
		return nil, fmt.Errorf("-modules: %w", err)
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	tmp, err := os.MkdirTemp(opts.OutDir, ".mkimage-"+opts.Config+"-")
	if err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	// (a) u-root compiles the commands onto our base archive.
	base := filepath.Join(tmp, "base.cpio")
	if err := writeArchiveFile(base, BaseRecords()); err != nil {
		return nil, fmt.Errorf("base archive: %w", err)
	}
	urootOut := filepath.Join(tmp, "uroot.cpio")
	t0 := time.Now()
	if err := runURoot(ctx, opts, cfgPath, base, urootOut, logf); err != nil {
		return nil, err
	}
	res := &Result{Config: opts.Config, Settings: settings, URootTime: time.Since(t0)}

	f, err := os.Open(urootOut)
	if err != nil {
		return nil, fmt.Errorf("u-root output: %w", err)
	}
	defer f.Close()
	recs, err := ReadArchive(f)
	if err != nil {
		return nil, fmt.Errorf("reading u-root output %s: %w", urootOut, err)
	}
	im := NewImage()
	for _, r := range BaseRecords() {
		if err := im.Add(r); err != nil {
			return nil, err
		}
	}
	for _, r := range recs {
		if err := im.Add(normalizeMode(r)); err != nil {
			return nil, fmt.Errorf("u-root output: %w", err)
		}
	}

	// (b) kernel modules.
	if opts.KernelModules == "" {
		logf("%s: no kernel module directory given: the image carries no kernel modules", opts.Config)
	} else {
		mods, err := AddModules(im, opts.KernelModules, settings.Modules)
		if err != nil {
			return nil, err
		}
		res.Modules = mods
		if len(mods.Missing) > 0 {
			msg := fmt.Sprintf("%s: modules that kernel %s neither ships nor has built in: %s",
				opts.Config, mods.Release, strings.Join(mods.Missing, " "))
			if opts.StrictModules {
				return nil, errors.New(msg)
			}
			logf("warning: %s (left out)", msg)
		}
		if len(mods.Builtin) > 0 {
			logf("%s: built into kernel %s, nothing to ship: %s", opts.Config, mods.Release, strings.Join(mods.Builtin, " "))
		}
		if len(mods.SoftMissing) > 0 {
			logf("%s: soft dependencies not in kernel %s (skipped, as modprobe would): %s",
				opts.Config, mods.Release, strings.Join(mods.SoftMissing, " "))
		}
	}

	// (c) Go-only, busybox-free.
	final := im.Records()
	res.Entries = len(final)
	if err := CheckGoOnly(final); err != nil {
		return nil, err
	}

	// (d) the archive and its compressed forms, first in tmp.
	name := opts.Config + ".cpio"
	rawTmp := filepath.Join(tmp, name)
	if err := writeArchiveFile(rawTmp, final); err != nil {
		return nil, err
	}
	if res.Raw, err = fileSize(rawTmp); err != nil {
		return nil, err
	}
	xzTmp := rawTmp + ".xz"
	if res.XZ, err = compressFile(rawTmp, xzTmp, XZ); err != nil {
		return nil, err
	}
	gzTmp := rawTmp + ".gz"
	if res.GZ, err = compressFile(rawTmp, gzTmp, GZ); err != nil {
		return nil, err
	}

	// (e) the budget.
	over := settings.BudgetXZBytes > 0 && res.XZ > settings.BudgetXZBytes
	if over || opts.SizeTable {
		logf("%s: measuring what takes the space (an unstripped build of the gbb binary for its symbols, and xz of each part)", opts.Config)
		sizes, err := MeasureSizes(SizeInput{
			Config: opts.Config, Records: final, Modules: res.Modules,
			Raw: res.Raw, XZ: res.XZ, Budget: settings.BudgetXZBytes,
			Commands: func() ([]GoCommand, error) {
				if opts.listCommands != nil {
					return opts.listCommands(ctx)
				}
				return listConfigCommands(ctx, opts, cfgPath)
			},
			Unstripped: func(name string) ([]byte, error) {
				return unstrippedBinary(ctx, opts, cfgPath, base, tmp, name, logf)
			},
		})
		switch {
		case err == nil:
			res.Sizes, res.Table = sizes, sizes.String()
		case over:
			// Still fail for the budget, the reason that matters.
			res.Table = fmt.Sprintf("(what takes the space could not be measured: %v)\n", err)
		default:
			return nil, fmt.Errorf("measuring sizes: %w", err)
		}
	}
	if over {
		msg := fmt.Sprintf("%s is %d bytes xz, budget %d (%s over)", name+".xz",
			res.XZ, settings.BudgetXZBytes, human(res.XZ-settings.BudgetXZBytes))
		if !opts.IgnoreBudget {
			// The table goes with the error: it is what the reader needs to
			// choose what to leave out.
			return nil, fmt.Errorf("%w: %s\n\n%s", ErrOverBudget, msg, res.Table)
		}
		logf("warning: %v: %s (written anyway, -ignore-budget)", ErrOverBudget, msg)
	}

	// Move the outputs into place.
	outputs := []struct {
		tmp  string
		want bool
	}{{rawTmp, true}, {xzTmp, settings.Wants(CompressXZ)}, {gzTmp, settings.Wants(CompressGZ)}}
	for _, o := range outputs {
		if !o.want {
			continue
		}
		dst := filepath.Join(opts.OutDir, filepath.Base(o.tmp))
		if err := os.Chmod(o.tmp, 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(o.tmp, dst); err != nil {
			return nil, fmt.Errorf("writing output: %w", err)
		}
		res.Outputs = append(res.Outputs, dst)
	}
	res.Total = time.Since(start)
	return res, nil
}

// GODEBUG defaults: gbb builds in GOPATH mode, where the go command bakes
// in Go 1.20's defaults (panicnil=1, x509sha1=1, tls3des=1 and 30 more),
// not those of the go.mod the tests build with, and every command of the
// binary parses that list at its start. The link sets them to this
// module's own: none. A later -X wins over the go command's.
const (
	stripLdflags   = "-ldflags=-s -w -buildid= -X=runtime.godebugDefault="
	noStripLdflags = "-ldflags=-X=runtime.godebugDefault="
)

// runURoot runs `go tool u-root -build=gbb` for the config, with extra
// arguments before the output's; with -go-no-strip, the binary keeps its
// symbols and is otherwise the same.
func runURoot(ctx context.Context, opts Options, cfgPath, base, out string, logf func(string, ...any), extra ...string) error {
	args := []string{"tool", "u-root", "-build=gbb",
		"-config-file=" + cfgPath, "-config=" + opts.Config,
		"-base=" + base}
	ldflags := stripLdflags
	if slices.Contains(extra, "-go-no-strip") {
		ldflags = noStripLdflags
	}
	args = append(args, "-go-extra-args="+ldflags)
	args = append(append(args, extra...), "-o", out)
	dir := filepath.Dir(cfgPath)
	if opts.runTool != nil {
		return opts.runTool(ctx, dir, args)
	}
	goCmd := opts.GoCommand
	if goCmd == "" {
		goCmd = "go"
	}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	var w io.Writer = &buf
	if opts.Verbose {
		w = io.MultiWriter(&buf, lineLogger{logf})
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s (in %s): %w\n%s", goCmd, strings.Join(args, " "), cmd.Dir, err, lastLines(buf.String(), 30))
	}
	return nil
}

// unstrippedBinary has u-root build the config again with -go-no-strip,
// in tmp, and returns the file at name in its output: the same binary as
// the image's, sections byte for byte, with its symbol table.
func unstrippedBinary(ctx context.Context, opts Options, cfgPath, base, tmp, name string, logf func(string, ...any)) ([]byte, error) {
	out := filepath.Join(tmp, "unstripped.cpio")
	logf("%s: building an unstripped copy of /%s for its symbols", opts.Config, name)
	if err := runURoot(ctx, opts, cfgPath, base, out, logf, "-go-no-strip"); err != nil {
		return nil, err
	}
	defer os.Remove(out)
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := ReadArchive(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", out, err)
	}
	for _, r := range recs {
		if cpio.Normalize(r.Name) == name {
			return contents(r)
		}
	}
	return nil, fmt.Errorf("%s holds no %s", out, name)
}

// normalizeMode gives what u-root copied from the checkout the modes git
// gives files (0644, or 0755 for a file with any execute bit) and 0755 to
// its directories, so that the umask of the checkout does not change the
// image. The base archive's entries are added first and keep theirs.
func normalizeMode(r cpio.Record) cpio.Record {
	switch r.Mode & cpio.S_IFMT {
	case cpio.S_IFREG:
		perm := uint64(0o644)
		if r.Mode&0o111 != 0 {
			perm = 0o755
		}
		r.Mode = cpio.S_IFREG | perm
	case cpio.S_IFDIR:
		r.Mode = cpio.S_IFDIR | 0o755
	}
	return r
}

// lineLogger sends what is written to it to logf, a line at a time (a
// write is assumed to end on a line, as log output does).
type lineLogger struct{ logf func(string, ...any) }

func (l lineLogger) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		l.logf("u-root: %s", line)
	}
	return len(p), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fileSize(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// compressFile compresses src into dst with c and returns dst's size.
func compressFile(src, dst string, c func(io.Writer, io.Reader, int64) error) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	size, err := fileSize(src)
	if err != nil {
		return 0, err
	}
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	if err := c(out, in, size); err != nil {
		out.Close()
		return 0, fmt.Errorf("compressing %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return 0, fmt.Errorf("writing %s: %w", dst, err)
	}
	return fileSize(dst)
}

// Summary is the one line that tells what was built.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: raw %s, gz %s, xz %s", r.Config, human(r.Raw), human(r.GZ), human(r.XZ))
	if r.Settings.BudgetXZBytes > 0 {
		fmt.Fprintf(&b, " (%d%% of %s budget)", r.XZ*100/r.Settings.BudgetXZBytes, human(r.Settings.BudgetXZBytes))
	}
	fmt.Fprintf(&b, " [%d/%d/%d bytes]; %d entries", r.Raw, r.GZ, r.XZ, r.Entries)
	if r.Modules != nil {
		fmt.Fprintf(&b, ", %d modules for %s", len(r.Modules.Modules), r.Modules.Release)
	} else {
		b.WriteString(", no kernel modules")
	}
	fmt.Fprintf(&b, "; built in %.1fs (u-root %.1fs) -> %s", r.Total.Seconds(), r.URootTime.Seconds(), strings.Join(r.Outputs, " "))
	return b.String()
}

// human formats a byte count with binary units.
func human(n int64) string {
	const unit = 1024
	neg := n < 0
	if neg {
		n = -n
	}
	s := ""
	switch {
	case n < unit:
		s = fmt.Sprintf("%d B", n)
	case n < unit*unit:
		s = fmt.Sprintf("%.1f KiB", float64(n)/unit)
	default:
		s = fmt.Sprintf("%.2f MiB", float64(n)/(unit*unit))
	}
	if neg {
		return "-" + s
	}
	return s
}
