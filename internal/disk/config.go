package disk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ginit-dev/ginit/internal/imagespec"
)

// Config holds the image configuration given on the command line. Only the
// fields that were set change the document; see Apply.
type Config struct {
	Entrypoint    []string
	EntrypointSet bool
	Cmd           []string
	CmdSet        bool
	Env           []string // K=V, merged by key
	WorkingDir    string
	User          string
	Arch          string // "architecture" when the document has none
}

// Any reports whether any configuration was given.
func (c *Config) Any() bool {
	return c.EntrypointSet || c.CmdSet || len(c.Env) > 0 || c.WorkingDir != "" || c.User != ""
}

// CheckEnv validates a K=V pair.
func CheckEnv(kv string) error {
	k, _, ok := strings.Cut(kv, "=")
	if !ok || k == "" || strings.ContainsAny(k, " \t\n") {
		return fmt.Errorf("env %q: want KEY=VALUE", kv)
	}
	return nil
}

// Apply returns the image configuration document: existing (nil for none)
// with the fields of c set, in the OCI image-spec shape
// {"architecture":...,"os":"linux","config":{"Entrypoint":[...],...}}.
// Fields of existing that c does not name are kept. As in a Dockerfile,
// setting the entrypoint without a command drops the old command. Empty
// lists and strings are left out.
func (c *Config) Apply(existing []byte) ([]byte, error) {
	doc := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(existing)) > 0 {
		if err := json.Unmarshal(existing, &doc); err != nil {
			return nil, fmt.Errorf("existing %s: %w", imagespec.ConfigPath, err)
		}
	}
	cfg := map[string]json.RawMessage{}
	if raw, ok := doc["config"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return nil, fmt.Errorf("existing %s: config: %w", imagespec.ConfigPath, err)
		}
	}
	set := func(m map[string]json.RawMessage, key string, v any, empty bool) error {
		if empty {
			delete(m, key)
			return nil
		}
		b, err := marshal(v)
		if err != nil {
			return err
		}
		m[key] = b
		return nil
	}
	var errs []error
	if c.EntrypointSet {
		errs = append(errs, set(cfg, "Entrypoint", c.Entrypoint, len(c.Entrypoint) == 0))
		if !c.CmdSet {
			delete(cfg, "Cmd")
		}
	}
	if c.CmdSet {
		errs = append(errs, set(cfg, "Cmd", c.Cmd, len(c.Cmd) == 0))
	}
	if len(c.Env) > 0 {
		var env []string
		if raw, ok := cfg["Env"]; ok {
			if err := json.Unmarshal(raw, &env); err != nil {
				return nil, fmt.Errorf("existing %s: config.Env: %w", imagespec.ConfigPath, err)
			}
		}
		env = imagespec.MergeEnv(env, c.Env)
		errs = append(errs, set(cfg, "Env", env, len(env) == 0))
	}
	if c.WorkingDir != "" {
		errs = append(errs, set(cfg, "WorkingDir", c.WorkingDir, false))
	}
	if c.User != "" {
		errs = append(errs, set(cfg, "User", c.User, false))
	}
	if _, ok := doc["architecture"]; !ok && c.Arch != "" {
		errs = append(errs, set(doc, "architecture", c.Arch, false))
	}
	if _, ok := doc["os"]; !ok {
		errs = append(errs, set(doc, "os", "linux", false))
	}
	errs = append(errs, set(doc, "config", cfg, len(cfg) == 0))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return marshal(doc)
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
