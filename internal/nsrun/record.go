package nsrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RecordDir is where named instances are recorded.
const RecordDir = "/run/chrootrun"

// Record is a named running instance: enough to find it again, tell it from
// a process that reused its pid, and run commands beside it as it runs its
// own.
type Record struct {
	Name string
	Pid  int // the namespace's init, in the recorder's PID namespace
	// StartTime is the init's start time in clock ticks after boot
	// (/proc/PID/stat field 22): a reused pid has another.
	StartTime  uint64
	Namespaces map[string]string
	Root       string
	Argv       []string
	Env        []string
	Dir        string
	UID, GID   uint32
	Groups     []uint32 `json:",omitempty"`
	// Capabilities and NoNewPrivs are the instance's, for Join's commands.
	Capabilities []string `json:",omitempty"`
	NoNewPrivs   bool     `json:",omitempty"`
	Supervisor   int      // pid of the process that started it
	Created      time.Time
}

// ErrNoInstance is returned for a name with no live record.
var ErrNoInstance = errors.New("no such instance")

// CheckName says whether name can name an instance.
func CheckName(name string) error {
	valid := name != "" && len(name) <= 128
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("_.-", c)) {
			valid = false
		}
	}
	if !valid {
		return fmt.Errorf("instance name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
	}
	return nil
}

// NewRecord describes the running instance p started from cfg.
func NewRecord(name string, p *Process, cfg Config) (Record, error) {
	r := Record{
		Name:         name,
		Pid:          p.Pid,
		Root:         cfg.Root,
		Argv:         cfg.Argv,
		Env:          cfg.Env,
		Dir:          cfg.Dir,
		UID:          cfg.UID,
		GID:          cfg.GID,
		Groups:       cfg.Groups,
		Capabilities: cfg.Capabilities,
		NoNewPrivs:   cfg.NoNewPrivs,
		Supervisor:   os.Getpid(),
		Created:      time.Now().UTC(),
	}
	var err error
	if r.StartTime, err = startTime(p.Pid); err != nil {
		return r, err
	}
	if r.Namespaces, err = Namespaces(p.Pid); err != nil {
		return r, err
	}
	return r, nil
}

// startTime reads field 22 of /proc/PID/stat.
func startTime(pid int) (uint64, error) {
	p := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	// The command name (field 2) may hold spaces and parentheses: count
	// from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse %s: no command field", p)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("parse %s: %d fields", p, len(f)+2)
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s start time %q: %w", p, f[19], err)
	}
	return t, nil
}

// Alive says whether the recorded init still runs: same pid, same start
// time, same namespaces.
func (r Record) Alive() bool {
	t, err := startTime(r.Pid)
	if err != nil || t != r.StartTime {
		return false
	}
	ns, err := Namespaces(r.Pid)
	if err != nil {
		return false
	}
	for k, v := range r.Namespaces {
		if ns[k] != v {
			return false
		}
	}
	return true
}

func recordPath(dir, name string) string { return filepath.Join(dir, name+".json") }

// Save writes r under dir. It fails when a live instance has the name; a
// stale record of it is replaced. With replace, r's own earlier record (a
// restarted instance) is overwritten.
func (r Record) Save(dir string, replace bool) error {
	if err := CheckName(r.Name); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode record %s: %w", r.Name, err)
	}
	p := recordPath(dir, r.Name)
	if !replace {
		if old, err := LoadRecord(dir, r.Name); err == nil {
			return fmt.Errorf("instance %s is running (pid %d, root %s)", r.Name, old.Pid, old.Root)
		}
	}
	// Written aside and renamed, so a reader never sees half a record.
	tmp := p + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write record %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename record %s: %w", p, err)
	}
	return nil
}

// Remove deletes r's record, if it is still r's (a later instance of the
// same name keeps its own).
func (r Record) Remove(dir string) error {
	p := recordPath(dir, r.Name)
	cur, err := readRecord(p)
	if err != nil {
		return nil
	}
	if cur.Pid != r.Pid || cur.StartTime != r.StartTime {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove record %s: %w", p, err)
	}
	return nil
}

func readRecord(p string) (Record, error) {
	var r Record
	b, err := os.ReadFile(p)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("parse record %s: %w", p, err)
	}
	return r, nil
}

// LoadRecord reads the live instance name under dir. A stale record (its
// init is gone) is removed, and the result is ErrNoInstance.
func LoadRecord(dir, name string) (Record, error) {
	if err := CheckName(name); err != nil {
		return Record{}, err
	}
	p := recordPath(dir, name)
	r, err := readRecord(p)
	if errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("instance %s: %w", name, ErrNoInstance)
	}
	if err != nil {
		return r, err
	}
	if !r.Alive() {
		os.Remove(p)
		return r, fmt.Errorf("instance %s (pid %d) has ended: %w", name, r.Pid, ErrNoInstance)
	}
	return r, nil
}

// ListRecords returns the live instances under dir by name, and removes the
// stale records it finds.
func ListRecords(dir string) ([]Record, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []Record
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || CheckName(name) != nil {
			continue
		}
		r, err := LoadRecord(dir, name)
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
