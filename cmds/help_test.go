// Package cmds_test checks what every command says to -h and --help.
package cmds_test

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The commands with flags (ginit, PID 1, reads only the kernel command line),
// and their subcommands.
var commands = map[string][]string{
	"chrootrun": {"exec", "ps"},
	"ginitctl":  {"run", "exec", "ps", "logs", "stop", "kill", "rm", "inspect", "volume", "prune", "export"},
	"mkimage":   nil,
	"oci2disk":  nil,
	"ocipull":   nil,
	"osboot":    nil,
}

// Every command answers -h and --help on stdout with status 0: what it is,
// an example, and every flag its source defines, each with a description.
func TestHelpListsEveryFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every command")
	}
	bin := t.TempDir()
	var pkgs []string
	for name := range commands {
		pkgs = append(pkgs, "./"+name)
	}
	sort.Strings(pkgs)
	build := exec.Command("go", append([]string{"build", "-o", bin + "/"}, pkgs...)...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %v: %v\n%s", pkgs, err, out)
	}
	for name, subs := range commands {
		flags := definedFlags(t, name)
		if len(flags) == 0 {
			t.Errorf("%s: no flags found in its source", name)
		}
		// A command's flags are listed by its own help or by one of its
		// subcommands'.
		var subHelp string
		for _, sub := range subs {
			subHelp += help(t, filepath.Join(bin, name), name+" "+sub, sub, "-h")
		}
		for _, args := range [][]string{{"-h"}, {"--help"}} {
			out := help(t, filepath.Join(bin, name), name, args...)
			if !strings.Contains(out, "Example") {
				t.Errorf("%s %s: no example in\n%s", name, args[0], out)
			}
			for _, f := range flags {
				if !regexp.MustCompile(`(^|[\s,\[])--?` + regexp.QuoteMeta(f) + `\b`).MatchString(out + subHelp) {
					t.Errorf("%s %s and its subcommands' help do not list -%s:\n%s", name, args[0], f, out)
				}
			}
		}
	}
	if out := help(t, filepath.Join(bin, "chrootrun"), "chrootrun", "-h"); !strings.Contains(out, "mount and PID namespaces") {
		t.Errorf("chrootrun -h does not say what chrootrun does:\n%s", out)
	}
}

// help runs the command with args and returns its stdout, checking that it
// exits 0, writes nothing on stderr and starts with its usage line.
func help(t *testing.T, bin, usage string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	name := filepath.Base(bin) + " " + strings.Join(args, " ")
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s: status %d; want 0 (stderr %q)", name, code, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("%s: stderr %q; want nothing", name, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "Usage: "+usage) {
		t.Errorf("%s: stdout starts %.60q; want %q", name, stdout.String(), "Usage: "+usage)
	}
	return stdout.String()
}

// flagDefiners are the flag package's functions and FlagSet methods that
// define a flag.
var flagDefiners = map[string]bool{
	"Bool": true, "BoolVar": true, "BoolFunc": true, "Duration": true, "DurationVar": true,
	"Float64": true, "Float64Var": true, "Func": true, "Int": true, "IntVar": true,
	"Int64": true, "Int64Var": true, "String": true, "StringVar": true, "TextVar": true,
	"Uint": true, "UintVar": true, "Uint64": true, "Uint64Var": true, "Var": true,
}

// definedFlags reads the names of the flags that cmd's source defines on the
// flag package or a FlagSet named fs, and checks each has a description.
func definedFlags(t *testing.T, cmd string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cmd, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, file, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !flagDefiners[sel.Sel.Name] {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || (x.Name != "fs" && x.Name != "flag") {
				return true
			}
			var lits []string
			for _, a := range call.Args {
				if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatalf("%s: %v", fset.Position(lit.Pos()), err)
					}
					lits = append(lits, s)
				}
			}
			if len(lits) == 0 {
				t.Errorf("%s: a flag whose name is not a literal", fset.Position(call.Pos()))
				return true
			}
			names = append(names, lits[0])
			if len(lits) < 2 || lits[len(lits)-1] == "" {
				t.Errorf("%s: flag -%s has no description", fset.Position(call.Pos()), lits[0])
			}
			return true
		})
	}
	return names
}
