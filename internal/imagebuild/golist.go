package imagebuild

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Busybox is what a u-root config in uroot.json compiles into its gbb
// binary (u-root's mkuimage template schema).
type Busybox struct {
	// Patterns are the commands' package patterns, with command set names
	// expanded as u-root expands them.
	Patterns  []string
	GOOS      string
	GOARCH    string
	BuildTags []string
}

// BusyboxCommands reads config name's gbb commands and target from the
// uroot.json at cfgPath.
func BusyboxCommands(cfgPath, name string) (Busybox, error) {
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return Busybox{}, err
	}
	type config struct {
		GOOS      string   `json:"goos"`
		GOARCH    string   `json:"goarch"`
		BuildTags []string `json:"build_tags"`
		Commands  []struct {
			Builder  string   `json:"builder"`
			Commands []string `json:"commands"`
		} `json:"commands"`
	}
	var f struct {
		Commands map[string][]string `json:"commands"`
		Configs  map[string]config   `json:"configs"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return Busybox{}, fmt.Errorf("%s: %w", cfgPath, err)
	}
	c, ok := f.Configs[name]
	if !ok {
		return Busybox{}, fmt.Errorf("%s: no config %q", cfgPath, name)
	}
	bb := Busybox{GOOS: c.GOOS, GOARCH: c.GOARCH, BuildTags: c.BuildTags}
	seen := map[string]bool{}
	for _, set := range c.Commands {
		if set.Builder == "binary" {
			continue // separate binaries, measured as files of their own
		}
		for _, n := range set.Commands {
			expanded, ok := f.Commands[n]
			if !ok {
				expanded = []string{n}
			}
			for _, p := range expanded {
				if !seen[p] {
					seen[p] = true
					bb.Patterns = append(bb.Patterns, p)
				}
			}
		}
	}
	return bb, nil
}

// ListCommands asks `go list`, in dir (the module's root), for the
// packages of each command pattern and every package each one imports,
// for the config's target and build tags, as gbb would compile them.
func ListCommands(ctx context.Context, goCmd, dir string, c Busybox) ([]GoCommand, error) {
	if len(c.Patterns) == 0 {
		return nil, nil
	}
	if goCmd == "" {
		goCmd = "go"
	}
	args := []string{"list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}"}
	if len(c.BuildTags) > 0 {
		args = append(args, "-tags", strings.Join(c.BuildTags, ","))
	}
	args = append(args, c.Patterns...)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if c.GOOS != "" {
		cmd.Env = append(cmd.Env, "GOOS="+c.GOOS)
	}
	if c.GOARCH != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+c.GOARCH)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s (in %s): %w: %s", goCmd, strings.Join(args, " "), dir, err, lastLines(errb.String(), 10))
	}
	return parseGoList(out.String()), nil
}

// parseGoList reads lines of "importpath dep dep ...".
func parseGoList(s string) []GoCommand {
	var cmds []GoCommand
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		cmds = append(cmds, GoCommand{Name: path.Base(f[0]), Pkg: f[0], Deps: f[1:]})
	}
	return cmds
}

// listConfigCommands is BusyboxCommands and ListCommands for a build.
func listConfigCommands(ctx context.Context, opts Options, cfgPath string) ([]GoCommand, error) {
	c, err := BusyboxCommands(cfgPath, opts.Config)
	if err != nil {
		return nil, err
	}
	return ListCommands(ctx, opts.GoCommand, filepath.Dir(cfgPath), c)
}
