// Package rundoc decodes the run document: the JSON a host hands ginit
// through QEMU's fw_cfg (opt/ginit/run) to say what to run, instead of the
// kernel command line, which every process in the guest and the host's ps
// can read. Its values may be secrets: nothing here prints them.
package rundoc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/ipconfig"
)

// FwCfgName is the fw_cfg file a host puts the document in
// (qemu -fw_cfg name=opt/ginit/run,file=PATH).
const FwCfgName = "opt/ginit/run"

// Version is the schema version this package reads.
const Version = 1

// MaxSize bounds a document: it is read whole into PID 1's memory.
const MaxSize = 1 << 20

// Document is a run document. A field left out keeps the image's value.
type Document struct {
	Version int `json:"version"`
	// Entrypoint replaces the image's Entrypoint and drops its Cmd, as
	// docker run --entrypoint does; [] clears it.
	Entrypoint *[]string `json:"entrypoint,omitempty"`
	// Cmd replaces the image's Cmd.
	Cmd *[]string `json:"cmd,omitempty"`
	// Env entries are NAME=VALUE and override the image's by name.
	Env      []string `json:"env,omitempty"`
	Workdir  string   `json:"workdir,omitempty"`
	User     string   `json:"user,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
}

// Parse decodes and checks a document. Unknown fields, a missing or
// unknown version, and values ginit could not use are errors that name the
// field but never its value.
func Parse(data []byte) (Document, error) {
	if len(data) > MaxSize {
		return Document{}, fmt.Errorf("run document: %d bytes; at most %d", len(data), MaxSize)
	}
	// strings, not bytes: ginit links strings' reader already.
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var d Document
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("run document: %w", describe(err))
	}
	if strings.TrimSpace(string(data[dec.InputOffset():])) != "" {
		return Document{}, errors.New("run document: data after the JSON object")
	}
	if err := d.check(); err != nil {
		return Document{}, fmt.Errorf("run document: %w", err)
	}
	return d, nil
}

// describe rewords the decoder's errors so that they name the field and
// the expected type, and quote nothing of the input.
func describe(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("field %q: want %s, got a JSON %s", te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return fmt.Errorf("not JSON: syntax error at byte %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("empty or cut short")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The name of a field is the host's, not a secret.
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return err
}

func (d Document) check() error {
	if d.Version != Version {
		return fmt.Errorf("field \"version\": got %d, want %d", d.Version, Version)
	}
	if d.Entrypoint != nil {
		if err := checkWords("entrypoint", *d.Entrypoint); err != nil {
			return err
		}
	}
	if d.Cmd != nil {
		if err := checkWords("cmd", *d.Cmd); err != nil {
			return err
		}
	}
	for i, kv := range d.Env {
		name, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || name == "":
			return fmt.Errorf("field \"env\"[%d]: want NAME=VALUE", i)
		case strings.ContainsRune(kv, 0):
			return fmt.Errorf("field \"env\"[%d] (%s): contains a NUL byte", i, name)
		}
	}
	if d.Workdir != "" && !strings.HasPrefix(d.Workdir, "/") {
		return errors.New("field \"workdir\": want an absolute path")
	}
	if strings.ContainsRune(d.Workdir, 0) || strings.ContainsRune(d.User, 0) {
		return errors.New("field \"workdir\" or \"user\": contains a NUL byte")
	}
	if d.Hostname != "" {
		if err := ipconfig.CheckHostname(d.Hostname); err != nil {
			return fmt.Errorf("field \"hostname\": %w", err)
		}
	}
	return nil
}

func checkWords(field string, words []string) error {
	for i, w := range words {
		if strings.ContainsRune(w, 0) {
			return fmt.Errorf("field %q[%d]: contains a NUL byte", field, i)
		}
	}
	return nil
}

// Override is what the document changes in the image's configuration.
func (d Document) Override() imagespec.Override {
	o := imagespec.Override{Env: d.Env, Workdir: d.Workdir, User: d.User}
	if d.Entrypoint != nil {
		o.Entrypoint, o.HasEntrypoint = *d.Entrypoint, true
	}
	if d.Cmd != nil {
		o.Cmd, o.HasCmd = *d.Cmd, true
	}
	return o
}
