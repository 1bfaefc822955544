package imagebuild

import (
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/u-root/mkuimage/cpio"

	"github.com/ginit-dev/ginit/internal/testenv"
)

func TestSymbolPackage(t *testing.T) {
	known := map[string]bool{
		"runtime": true, "net": true, "net/http": true, "gopkg.in/yaml.v3": true,
		"mvdan.cc/sh/v3/interp": true, "vendor/golang.org/x/net/dns/dnsmessage": true,
		"github.com/ginit-dev/ginit/cmds/ginit": true, "slices": true,
	}
	for _, tt := range []struct{ sym, want string }{
		{"runtime.mallocgc", "runtime"},
		{"net/http.(*Client).Do", "net/http"},
		{"net.(*conn).Read", "net"},
		{"gopkg.in/yaml.v3.Marshal", "gopkg.in/yaml.v3"},
		{"gopkg.in/yaml.v3.(*parser).parse.func1", "gopkg.in/yaml.v3"},
		{"mvdan.cc/sh/v3/interp.(*Runner).cmd", "mvdan.cc/sh/v3/interp"},
		{"vendor/golang.org/x/net/dns/dnsmessage.(*Parser).Start", "vendor/golang.org/x/net/dns/dnsmessage"},
		{"github.com/ginit-dev/ginit/cmds/ginit.Main", "github.com/ginit-dev/ginit/cmds/ginit"},
		{"slices.SortFunc[go.shape.[]net/http.Header,go.shape.string]", "slices"},
		{"type:.eq.net/http.Request", "net/http"},
		{"type:*net.TCPConn", "net"},
		{"go:itab.*net.TCPConn,net.Conn", "net"},
		{"runtime.memmove.abi0", "runtime"},
		// Not in known: the package Go's naming implies.
		{"bb.u-root.com/bb/pkg/bbmain.Register", "bb.u-root.com/bb/pkg/bbmain"},
		{"main.main", "main"},
		// The linker's own.
		{"go:func.*", ""},
		{"go:string.*", ""},
		{"type:*", ""},
		{"gclocals·abc", ""},
	} {
		if got := symbolPackage(tt.sym, known); got != tt.want {
			t.Errorf("symbolPackage(%q) = %q; want %q", tt.sym, got, tt.want)
		}
	}
}

func TestPackageOwners(t *testing.T) {
	cmds := []GoCommand{
		{Name: "ginit", Pkg: "x/ginit", Deps: []string{"runtime", "fmt", "x/netconf", "x/shared"}},
		{Name: "ls", Pkg: "x/ls", Deps: []string{"runtime", "fmt", "x/shared", "x/shared"}},
		{Name: "true", Pkg: "x/true", Deps: []string{"runtime"}},
	}
	owner, users := packageOwners(cmds)
	want := map[string]string{"runtime": "", "fmt": "", "x/shared": "", "x/netconf": "ginit",
		"x/ginit": "ginit", "x/ls": "ls", "x/true": "true"}
	if !reflect.DeepEqual(owner, want) {
		t.Errorf("packageOwners() owners = %v; want %v", owner, want)
	}
	if users["runtime"] != 3 || users["x/shared"] != 2 || users["x/netconf"] != 1 {
		t.Errorf("packageOwners() users = %v; want runtime 3, x/shared 2 (a dep listed twice counts once), x/netconf 1", users)
	}
}

// TestBreakdownFake puts made-up symbols of two sections on two commands
// and checks every byte lands in exactly one row.
func TestBreakdownFake(t *testing.T) {
	secs := []elfSection{
		{name: ".text", addr: 0x1000, data: make([]byte, 1000)},
		{name: ".rodata", addr: 0x2000, data: make([]byte, 10000)},
		{name: ".go.buildinfo", addr: 0x5000, data: make([]byte, 50)},
	}
	syms := []elfSymbol{
		{name: "x/ginit.Main", section: 0, off: 0, size: 300},
		{name: "x/netconf.Up", section: 0, off: 300, size: 200},
		{name: "x/ls.Main", section: 0, off: 500, size: 100},
		{name: "runtime.mallocgc", section: 0, off: 600, size: 250},
		{name: "go:func.*", section: 0, off: 850, size: 50}, // the linker's: unnamed
		{name: "x/netconf.table", section: 1, off: 0, size: 1000},
		// 100 bytes of .text and 9000 of .rodata, all 50 of .go.buildinfo, no symbol
	}
	cmds := []GoCommand{
		{Name: "ginit", Pkg: "x/ginit", Deps: []string{"runtime", "x/netconf"}},
		{Name: "ls", Pkg: "x/ls", Deps: []string{"runtime"}},
		{Name: "true", Pkg: "x/true", Deps: []string{"runtime"}},
	}
	b := breakdown(secs, syms, 11200, cmds)
	type row struct {
		kind      BinaryRowKind
		name      string
		pkgs      int
		raw, est  int64
		dataBytes int
	}
	var got []row
	for _, r := range b.Rows {
		got = append(got, row{r.Kind, r.Name, r.Pkgs, r.Raw, r.Estimate, len(r.data)})
	}
	// Named: 1850 bytes; unnamed: 150 + 9000 + 50 = 9200 (200 in .text incl. go:func.*).
	// ginit's share of the unnamed: 9200*1500/1850 = 7459.
	want := []row{
		{RowCommand, "ginit", 2, 1500, 1500 + 9200*1500/1850, 1500},
		{RowCommand, "ls", 1, 100, 100 + 9200*100/1850, 100},
		{RowCommand, "true", 0, 0, 0, 0},
		{RowShared, "shared", 1, 250, 250 + 9200*250/1850, 250},
		{RowUnnamed, ".rodata", 0, 9000, 0, 9000},
		// Sections with less than smallSection unnamed share a row.
		{RowUnnamed, "other sections", 0, 200, 0, 200},
		{RowOverhead, "ELF headers, padding, sections not loaded", 0, 150, 0, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("breakdown() rows =\n%v\nwant\n%v", got, want)
	}
	var sum int64
	for _, r := range b.Rows {
		sum += r.Raw
	}
	if sum != 11200 {
		t.Errorf("rows add up to %d; want the file size, 11200", sum)
	}
	if len(b.Shared) != 1 || b.Shared[0] != (PackageSize{"runtime", 250, 3}) {
		t.Errorf("Shared = %v; want [{runtime 250 3}]", b.Shared)
	}
}

// TestBreakdownReal puts a real Go binary's bytes on made-up commands: the
// rows must cover its allocated sections exactly, and fmt goes to the
// command that alone imports it.
func TestBreakdownReal(t *testing.T) {
	_, bin := hello(t)
	cmds := []GoCommand{
		{Name: "hello", Pkg: "main", Deps: []string{"runtime", "fmt", "strconv"}},
		{Name: "other", Pkg: "x/other", Deps: []string{"runtime", "strconv"}},
	}
	b, err := Breakdown(bin, int64(len(bin)), cmds)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(strings.NewReader(string(bin)))
	if err != nil {
		t.Fatal(err)
	}
	var alloc int64
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS {
			alloc += int64(s.Size)
		}
	}
	var covered int64
	rows := map[string]BinaryRow{}
	for _, r := range b.Rows {
		rows[r.Name] = r
		if r.Kind != RowOverhead {
			covered += r.Raw
		}
	}
	if covered != alloc {
		t.Errorf("rows other than the ELF overhead add up to %d; want the allocated sections' %d", covered, alloc)
	}
	if r := rows["hello"]; r.Raw < 10000 || r.Pkgs != 2 {
		t.Errorf("hello row = %+v; want main and fmt, over 10 KB", r)
	}
	if r := rows["shared"]; r.Raw < rows["hello"].Raw {
		t.Errorf("shared row = %+v; want runtime and strconv, more than hello's", r)
	}
	if !slices.ContainsFunc(b.Shared, func(p PackageSize) bool { return p.Pkg == "runtime" && p.Users == 2 }) {
		t.Errorf("Shared = %v; want runtime, used by 2", b.Shared)
	}
	if _, err := Breakdown([]byte("not elf"), 7, cmds); err == nil {
		t.Errorf("Breakdown(not an ELF file) = nil error")
	}
}

func TestParseGoList(t *testing.T) {
	got := parseGoList("github.com/ginit-dev/ginit/cmds/ginit errors fmt\nexample.com/true\n\n")
	want := []GoCommand{
		{Name: "ginit", Pkg: "github.com/ginit-dev/ginit/cmds/ginit", Deps: []string{"errors", "fmt"}},
		{Name: "true", Pkg: "example.com/true", Deps: []string{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseGoList() = %+v; want %+v", got, want)
	}
}

// TestBusyboxCommands reads the repo's uroot.json and lists a small
// config's commands with the real go list.
func TestBusyboxCommands(t *testing.T) {
	bb, err := BusyboxCommands("../../uroot.json", "minimal")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(bb.Patterns, "./cmds/ginit") || bb.GOOS != "linux" || !slices.Contains(bb.BuildTags, "goshsmall") {
		t.Errorf("BusyboxCommands(minimal) = %+v; want ./cmds/ginit, linux, goshsmall", bb)
	}
	lb, err := BusyboxCommands("../../uroot.json", "linuxboot")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lb.Patterns {
		if n := strings.Count(strings.Join(lb.Patterns, "\n")+"\n", p+"\n"); n != 1 {
			t.Errorf("linuxboot pattern %s listed %d times; want once", p, n)
		}
	}
	if _, err := BusyboxCommands("../../uroot.json", "nosuch"); err == nil {
		t.Errorf("BusyboxCommands(nosuch) = nil error")
	}
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "no go command for go list")
	}
	cmds, err := ListCommands(context.Background(), "go", "../..", Busybox{Patterns: []string{"./cmds/chrootrun"}, GOOS: "linux", GOARCH: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 1 || cmds[0].Name != "chrootrun" || cmds[0].Pkg != "github.com/ginit-dev/ginit/cmds/chrootrun" || !slices.Contains(cmds[0].Deps, "runtime") {
		t.Errorf("ListCommands(./cmds/chrootrun) = %+v; want chrootrun with runtime among its deps", cmds)
	}
}

// TestURootNoStripFlag checks that the pinned u-root still has the flag the
// per-command table's unstripped build uses.
func TestURootNoStripFlag(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "no go command")
	}
	cmd := exec.Command("go", "tool", "u-root", "-h")
	cmd.Dir = "../.."
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "-go-no-strip") {
		t.Errorf("go tool u-root -h does not list -go-no-strip:\n%s", lastLines(string(out), 20))
	}
}

func TestNormalizeMode(t *testing.T) {
	for _, tt := range []struct{ in, want uint64 }{
		{cpio.S_IFREG | 0o664, cpio.S_IFREG | 0o644},
		{cpio.S_IFREG | 0o600, cpio.S_IFREG | 0o644},
		{cpio.S_IFREG | 0o775, cpio.S_IFREG | 0o755},
		{cpio.S_IFREG | 0o700, cpio.S_IFREG | 0o755},
		{cpio.S_IFDIR | 0o775, cpio.S_IFDIR | 0o755},
		{cpio.S_IFLNK | 0o777, cpio.S_IFLNK | 0o777},
		{cpio.S_IFCHR | 0o600, cpio.S_IFCHR | 0o600},
	} {
		if got := normalizeMode(cpio.Record{Info: cpio.Info{Mode: tt.in}}).Mode; got != tt.want {
			t.Errorf("normalizeMode(%#o) = %#o; want %#o", tt.in, got, tt.want)
		}
	}
}

// fakeXZ stands for xz in table tests: half the bytes.
func fakeXZ(b []byte) (int64, error) { return int64(len(b)+1) / 2, nil }

func TestMeasureSizes(t *testing.T) {
	dir := writeKernel(t, "6.1.0-t", "6.1.0-t SMP")
	im := NewImage()
	_, bin := hello(t)
	for _, r := range []cpio.Record{
		file("bbin/bb", bin, 0o755),
		cpio.Symlink("bbin/hello", "bb"),
		cpio.Symlink("bbin/other", "bb"),
		cpio.Symlink("init", "bbin/hello"),
		file("etc/hosts", []byte("127.0.0.1 localhost\n"), 0o644),
		file("etc/profile", []byte(strings.Repeat("export X=1\n", 100)), 0o644),
	} {
		if err := im.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	mods, err := AddModules(im, dir, []string{"virtio_blk"})
	if err != nil {
		t.Fatal(err)
	}
	recs := im.Records()
	var buf strings.Builder
	if err := WriteArchive(&buf, recs); err != nil {
		t.Fatal(err)
	}
	r, err := MeasureSizes(SizeInput{
		Config: "fake", Records: recs, Modules: mods, Raw: int64(buf.Len()), XZ: 3000, Budget: 2000,
		Commands: func() ([]GoCommand, error) {
			return []GoCommand{
				{Name: "hello", Pkg: "main", Deps: []string{"runtime", "fmt"}},
				{Name: "other", Pkg: "x/other", Deps: []string{"runtime"}},
			}, nil
		},
		Unstripped: func(string) ([]byte, error) { return nil, errors.New("the binary has its symbols: not called") },
		XZSize:     fakeXZ,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Binary == nil || r.Binary.Path != "/bbin/bb" || !reflect.DeepEqual(r.Binary.Links, []string{"hello", "other"}) {
		t.Fatalf("Binary = %+v; want /bbin/bb linked from hello and other", r.Binary)
	}
	if r.Binary.Breakdown == nil {
		t.Fatalf("no breakdown: %v", r.Binary.Err)
	}
	var names []string
	for _, m := range r.Modules {
		names = append(names, m.Name+": "+m.Why)
	}
	wantMods := []string{"virtio_blk: requested", "virtio: needed by virtio_blk", "virtio_ring: needed by virtio, virtio_blk"}
	if !sameSet(names, wantMods) {
		t.Errorf("modules = %q; want %q", names, wantMods)
	}
	for i := 1; i < len(r.Modules); i++ {
		if r.Modules[i].Raw > r.Modules[i-1].Raw {
			t.Errorf("modules not sorted by size: %v", r.Modules)
		}
	}
	// Every byte of the archive is in one row.
	sum := r.Binary.Raw + r.Headers
	for _, m := range r.Modules {
		sum += m.Raw
	}
	for _, f := range r.Files {
		sum += f.Raw
	}
	if sum != r.Raw {
		t.Errorf("binary + modules + files + headers = %d; want the archive's %d", sum, r.Raw)
	}
	if len(r.Files) == 0 || r.Files[0].Name != "/etc/profile" {
		t.Errorf("Files = %+v; want /etc/profile, the largest, first", r.Files)
	}

	s := r.String()
	for _, want := range []string{
		"fake: 2.9 KiB xz, 150.0% of its 2.0 KiB budget (1000 B over)",
		"Go commands in /bbin/bb (2 linked)",
		"go tool nm -size", "go list -deps",
		"\n  hello ", "\n  other ", "\n  shared (runtime, std, common) ",
		".gopclntab: function tables",
		"largest shared packages (commands importing them; 0: gbb's own): runtime ",
		"Kernel modules for 6.1.0-t: 3 files",
		"\n  virtio_blk ", "requested",
		"/etc/profile", "/lib/modules/6.1.0-t/modules.dep", "cpio headers, names, link targets, padding",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("String() =\n%s\nwant it to hold %q", s, want)
		}
	}
	// The command rows come by size, largest first.
	if strings.Index(s, "\n  hello ") > strings.Index(s, "\n  other ") {
		t.Errorf("String(): hello (main and fmt) comes after other (nothing of its own):\n%s", s)
	}
	t.Logf("table:\n%s", s)

	// Without a way to list the commands, the table still has the binary.
	r, err = MeasureSizes(SizeInput{Config: "fake", Records: recs, Raw: int64(buf.Len()), XZSize: fakeXZ})
	if err != nil {
		t.Fatal(err)
	}
	if r.Binary == nil || r.Binary.Breakdown != nil || r.Binary.Err == nil || !strings.Contains(r.String(), "no per-command rows: ") {
		t.Errorf("MeasureSizes(no commands) = %+v; want the binary without breakdown, saying why", r.Binary)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// hello builds a small Go program twice, stripped as gbb strips and with
// its symbols, as stand-ins for a gbb binary and its unstripped build.
func hello(t *testing.T) (stripped, unstripped []byte) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "no go command to build a test program")
	}
	helloMu.Lock()
	defer helloMu.Unlock()
	if helloBins[0] == nil {
		helloBins[0], helloBins[1] = buildHello(t)
	}
	return helloBins[0], helloBins[1]
}

var (
	helloMu   sync.Mutex
	helloBins [2][]byte
)

func buildHello(t *testing.T) (stripped, unstripped []byte) {
	dir := t.TempDir()
	src := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/hello\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(out string, args ...string) []byte {
		cmd := exec.Command("go", append(append([]string{"build", "-trimpath", "-o", out}, args...), ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return build(filepath.Join(dir, "s"), "-ldflags=-s -w -buildid="), build(filepath.Join(dir, "u"))
}

// TestBuildOverBudget runs Build on a fake tree: u-root is a stand-in
// that writes a small archive with a stripped Go binary, the config asks
// for a kernel module, and the budget is 1 KiB. The build must fail with
// ErrOverBudget, write no image, and say what takes the space, down to
// the commands, which needs the stand-in's second, unstripped build.
func TestBuildOverBudget(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		testenv.Missing(t, "no xz program (Debian package xz-utils)")
	}
	stripped, unstripped := hello(t)
	if hasSymbols(stripped) || !hasSymbols(unstripped) {
		t.Fatalf("test programs: stripped has symbols %v, unstripped %v", hasSymbols(stripped), hasSymbols(unstripped))
	}
	root := t.TempDir()
	cfg := filepath.Join(root, "uroot.json")
	const config = `{
  "commands": {"core": ["example.com/hello", "example.com/other"]},
  "configs": {"tiny": {"goos": "linux", "goarch": "amd64", "commands": [{"builder": "gbb", "commands": ["core"]}]}},
  "ginit": {"configs": {"tiny": {"compress": ["xz", "gz"], "modules": ["virtio_blk"], "budget_xz_bytes": 1024}}}
}`
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls [][]string
	runTool := func(_ context.Context, dir string, args []string) error {
		mu.Lock()
		calls = append(calls, args)
		mu.Unlock()
		if dir != root {
			t.Errorf("u-root runs in %s; want the config's directory %s", dir, root)
		}
		bin := stripped
		if slices.Contains(args, "-go-no-strip") {
			bin = unstripped
		}
		out := args[slices.Index(args, "-o")+1]
		recs := append(BaseRecords(),
			file("bbin/bb", bin, 0o755),
			cpio.Symlink("bbin/hello", "bb"),
			cpio.Symlink("bbin/other", "bb"),
			cpio.Symlink("init", "bbin/hello"),
			file("etc/hosts", []byte("127.0.0.1 localhost\n"), 0o664))
		return writeArchiveFile(out, recs)
	}
	out := filepath.Join(root, "out")
	opts := Options{
		Config: "tiny", URootConfig: cfg, KernelModules: writeKernel(t, "6.1.0-t", "6.1.0-t SMP"), OutDir: out,
		runTool: runTool,
		listCommands: func(context.Context) ([]GoCommand, error) {
			return []GoCommand{
				{Name: "hello", Pkg: "main", Deps: []string{"fmt", "runtime"}},
				{Name: "other", Pkg: "example.com/other", Deps: []string{"runtime"}},
			}, nil
		},
	}
	res, err := Build(context.Background(), opts)
	if !errors.Is(err, ErrOverBudget) {
		t.Fatalf("Build(1 KiB budget) = %v, %v; want ErrOverBudget", res, err)
	}
	msg := err.Error()
	for _, want := range []string{
		"tiny.cpio.xz is ", "budget 1024",
		"Go commands in /bbin/bb (2 linked)",
		"\n  hello ", "\n  other ", "\n  shared (runtime, std, common) ",
		"\n  virtio_blk ", "\n  virtio_ring ", "/etc/hosts",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Build() error =\n%s\nwant it to hold %q", msg, want)
		}
	}
	if len(calls) != 2 || slices.Contains(calls[0], "-go-no-strip") || !slices.Contains(calls[1], "-go-no-strip") {
		t.Errorf("u-root calls = %q; want the build, then one with -go-no-strip", calls)
	}
	// Both builds link this module's GODEBUG defaults, not Go 1.20's,
	// the stripped one stripped.
	for i, want := range []string{"-go-extra-args=-ldflags=-s -w -buildid= -X=runtime.godebugDefault=", "-go-extra-args=-ldflags=-X=runtime.godebugDefault="} {
		if i < len(calls) && !slices.Contains(calls[i], want) {
			t.Errorf("u-root call %d = %q; want it to hold %q", i, calls[i], want)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("over budget, %s holds %v; want nothing", out, ents)
	}

	// -ignore-budget writes the image anyway, and the table comes back in
	// the result; a budget that fits writes it without a table.
	opts.IgnoreBudget = true
	calls = nil
	res, err = Build(context.Background(), opts)
	if err != nil || res.Sizes == nil || !strings.Contains(res.Table, "\n  hello ") {
		t.Fatalf("Build(-ignore-budget) = %+v, %v; want the image and its table", res, err)
	}
	if _, err := os.Stat(filepath.Join(out, "tiny.cpio.xz")); err != nil {
		t.Errorf("Build(-ignore-budget): %v", err)
	}
	opts.IgnoreBudget, opts.Budget = false, 100<<20
	calls = nil
	res, err = Build(context.Background(), opts)
	if err != nil || res.Table != "" || len(calls) != 1 {
		t.Errorf("Build(100 MiB budget) = table %q, %v, %d u-root calls; want no table, no error, one call", res.Table, err, len(calls))
	}
	// The u-root output's 0664 file is 0644 in the image.
	f, err := os.Open(filepath.Join(out, "tiny.cpio"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := ReadArchive(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Name == "etc/hosts" && r.Mode != cpio.S_IFREG|0o644 {
			t.Errorf("etc/hosts mode %#o; want %#o", r.Mode, cpio.S_IFREG|0o644)
		}
	}
}

// TestBuildModulesOverride checks that -modules is validated like the
// config's list, before anything is built.
func TestBuildModulesOverride(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "uroot.json")
	if err := os.WriteFile(cfg, []byte(testConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := false
	_, err := Build(context.Background(), Options{
		Config: "minimal", URootConfig: cfg, OutDir: t.TempDir(), Modules: []string{"virtio_blk", "drivers/x.ko"},
		runTool: func(context.Context, string, []string) error { ran = true; return errors.New("not reached") },
	})
	if err == nil || !strings.Contains(err.Error(), "drivers/x.ko") || ran {
		t.Errorf("Build(-modules drivers/x.ko) = %v, u-root ran %v; want an error naming the module, before u-root", err, ran)
	}
}
