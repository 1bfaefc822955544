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
	"strings"
	"time"
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
	// Verbose passes u-root's own output through to Logf.
	Verbose bool
	// GoCommand runs `go tool u-root`; default "go".
	GoCommand string
	// Logf prints progress and warnings, one line a call; default: none.
	Logf func(format string, args ...any)
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
	// Table is the table of what takes the space, when it was made.
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
	for _, r := range recs {
		if err := im.Add(r); err != nil {
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
		table, err := SizeTable(final, res.Modules, res.XZ, settings.BudgetXZBytes)
		if err != nil {
			return nil, err
		}
		res.Table = table
	}
	if over {
		err := fmt.Errorf("%w: %s is %d bytes xz, budget %d (%s over)\n%s", ErrOverBudget,
			name+".xz", res.XZ, settings.BudgetXZBytes, human(res.XZ-settings.BudgetXZBytes), res.Table)
		if !opts.IgnoreBudget {
			return nil, err
		}
		logf("warning: %v", err)
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

// runURoot runs `go tool u-root -build=gbb` for the config.
func runURoot(ctx context.Context, opts Options, cfgPath, base, out string, logf func(string, ...any)) error {
	goCmd := opts.GoCommand
	if goCmd == "" {
		goCmd = "go"
	}
	args := []string{"tool", "u-root", "-build=gbb",
		"-config-file=" + cfgPath, "-config=" + opts.Config,
		"-base=" + base, "-o", out}
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = filepath.Dir(cfgPath)
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
