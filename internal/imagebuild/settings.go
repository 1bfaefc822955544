// Package imagebuild builds ginit's initramfs images: it has u-root compile
// the Go commands of one uroot.json config into a single gbb binary, adds the
// kernel modules the config names with their dependencies and depmod's index
// files, checks that every executable in the image is a Go binary (no
// busybox, no libc, no scripts), and writes a reproducible cpio archive plus
// its compressed forms, within the config's size budget.
package imagebuild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// SettingsKey is the top-level key of uroot.json that holds ginit's own
// per-config settings. u-root ignores it.
const SettingsKey = "ginit"

// Settings are ginit's settings for one image config, from
// uroot.json's "ginit": {"configs": {NAME: {...}}}.
type Settings struct {
	// Compress lists the compressed files to write beside NAME.cpio:
	// "xz" (NAME.cpio.xz, CRC32 check as the kernel needs) and "gz"
	// (NAME.cpio.gz). Default: ["xz"].
	Compress []string `json:"compress"`
	// Modules are the kernel modules (names or aliases) the image carries,
	// with everything they depend on, and that ginit loads at boot.
	Modules []string `json:"modules"`
	// BudgetXZBytes is the most the xz-compressed image may weigh. Zero
	// means no budget.
	BudgetXZBytes int64 `json:"budget_xz_bytes"`
}

// Compression formats Settings.Compress accepts.
const (
	CompressXZ = "xz"
	CompressGZ = "gz"
)

// urootFile is the part of uroot.json this package reads.
type urootFile struct {
	Configs map[string]json.RawMessage `json:"configs"`
	Ginit   struct {
		Configs map[string]json.RawMessage `json:"configs"`
	} `json:"ginit"`
}

// LoadSettings reads uroot.json at path and returns the ginit settings of
// config name, with defaults filled in. The config must exist in the file's
// u-root "configs"; its "ginit" entry is optional. Unknown keys in the ginit
// entry are errors, so a misspelt budget does not pass silently.
func LoadSettings(path, name string) (Settings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Settings{}, fmt.Errorf("reading image config: %w", err)
	}
	return ParseSettings(b, name, path)
}

// ParseSettings is LoadSettings on the bytes of the file; source names the
// file in errors.
func ParseSettings(b []byte, name, source string) (Settings, error) {
	var f urootFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Settings{}, fmt.Errorf("%s: %w", source, err)
	}
	if _, ok := f.Configs[name]; !ok {
		return Settings{}, fmt.Errorf("%s: no config %q in \"configs\" (have: %s): %w",
			source, name, strings.Join(keys(f.Configs), ", "), os.ErrNotExist)
	}
	s := Settings{Compress: []string{CompressXZ}}
	if raw, ok := f.Ginit.Configs[name]; ok {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&s); err != nil {
			return Settings{}, fmt.Errorf("%s: %s.configs.%s: %w", source, SettingsKey, name, err)
		}
	}
	if err := s.validate(); err != nil {
		return Settings{}, fmt.Errorf("%s: %s.configs.%s: %w", source, SettingsKey, name, err)
	}
	return s, nil
}

var errInvalid = errors.New("invalid setting")

func (s *Settings) validate() error {
	seen := map[string]bool{}
	for _, c := range s.Compress {
		if c != CompressXZ && c != CompressGZ {
			return fmt.Errorf("compress %q: want %q or %q: %w", c, CompressXZ, CompressGZ, errInvalid)
		}
		if seen[c] {
			return fmt.Errorf("compress %q listed twice: %w", c, errInvalid)
		}
		seen[c] = true
	}
	for _, m := range s.Modules {
		if strings.TrimSpace(m) == "" || strings.ContainsAny(m, " \t\n/") {
			return fmt.Errorf("module %q: want a module name or alias: %w", m, errInvalid)
		}
	}
	if s.BudgetXZBytes < 0 {
		return fmt.Errorf("budget_xz_bytes %d is negative: %w", s.BudgetXZBytes, errInvalid)
	}
	return nil
}

// Wants reports whether the settings ask for compressed output format c.
func (s Settings) Wants(c string) bool {
	for _, x := range s.Compress {
		if x == c {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
