package imagebuild

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/ginit-dev/ginit/internal/kmod"
	"github.com/ginit-dev/ginit/internal/modinfo"
)

// ModulesLoadPath is the file, inside the image, that lists the modules
// ginit loads at boot, one name a line.
const ModulesLoadPath = "etc/modules-load.d/ginit.conf"

// Modules is what AddModules put into an image.
type Modules struct {
	// Release is the kernel release, the name of the modules directory.
	Release string
	// Dir is the image directory that holds them: lib/modules/<release>.
	Dir string
	*modinfo.Resolution
}

// AddModules adds to im the kernel modules that names ask for, from the
// kernel module directory dir (a /lib/modules/<release> tree, whose last
// element is taken as the release), with their dependency closure, and
// writes modules.dep, modules.alias, modules.softdep, a copy of
// modules.builtin, and ModulesLoadPath listing the requested modules that
// are shipped. A module built for another kernel release is an error.
func AddModules(im *Image, dir string, names []string) (*Modules, error) {
	m, err := addModuleFiles(im, dir, names)
	if err != nil {
		return nil, err
	}
	res := m.Resolution
	files := map[string][]byte{
		"modules.dep":     modinfo.DepFile(res.Modules),
		"modules.alias":   modinfo.AliasFile(res.Modules),
		"modules.softdep": modinfo.SoftdepFile(res.Modules),
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		files["modules.builtin"] = b
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	for name, b := range files {
		if err := im.AddFile(path.Join(m.Dir, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	return m, addLoadList(im, ModulesLoadPath, res.Load)
}

// ExtraModulesLoadPath lists the modules of an extra archive (see
// AddExtraModules) for ginit to load at boot.
const ExtraModulesLoadPath = "etc/modules-load.d/extra.conf"

// AddExtraModules adds modules as AddModules does, for an archive that a
// host passes after an image (Linux unpacks concatenated archives), so
// it must not replace the image's own index: the dependencies go into
// kmod.ExtraDep and the names into ExtraModulesLoadPath. A dependency the
// image has too is the same file at the same path.
func AddExtraModules(im *Image, dir string, names []string) (*Modules, error) {
	m, err := addModuleFiles(im, dir, names)
	if err != nil {
		return nil, err
	}
	if err := im.AddFile(path.Join(m.Dir, kmod.ExtraDep), modinfo.DepFile(m.Modules), 0o644); err != nil {
		return nil, err
	}
	return m, addLoadList(im, ExtraModulesLoadPath, m.Load)
}

func addLoadList(im *Image, name string, load []string) error {
	if len(load) == 0 {
		return nil
	}
	return im.AddFile(name, []byte(strings.Join(load, "\n")+"\n"), 0o644)
}

// addModuleFiles adds the module files names need, dependencies included.
func addModuleFiles(im *Image, dir string, names []string) (*Modules, error) {
	dir = filepath.Clean(dir)
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("kernel modules: %s is not a directory", dir)
	}
	release := filepath.Base(dir)
	tree, err := modinfo.OpenTree(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("kernel modules %s: %w", dir, err)
	}
	tree.Decompress = decompressModule
	res, err := tree.Resolve(names)
	if err != nil {
		return nil, fmt.Errorf("kernel modules %s: %w", dir, err)
	}
	m := &Modules{Release: release, Dir: path.Join("lib/modules", release), Resolution: res}

	for _, mod := range res.Modules {
		if rel := mod.Info.Release(); rel != release {
			return nil, fmt.Errorf("module %s (%s): built for kernel %q, not %q (the name of %s)",
				mod.Name, filepath.Join(dir, mod.Path), rel, release, dir)
		}
		p := filepath.Join(dir, filepath.FromSlash(mod.Path))
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("kernel modules: %w", err)
		}
		if err := im.AddFile(path.Join(m.Dir, mod.Path), data, 0o644); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// decompressModule gives the ELF bytes of a compressed module file.
func decompressModule(name string, data []byte) ([]byte, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(name, ".xz"):
		return filter(data, "xz", "-dc")
	case strings.HasSuffix(name, ".zst"):
		return filter(data, "zstd", "-dcq")
	}
	return nil, fmt.Errorf("%s: unknown compression", name)
}

// filter runs a program with data on stdin and returns its stdout.
func filter(data []byte, prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(prog, args...)
	cmd.Stdin = bytes.NewReader(data)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}
