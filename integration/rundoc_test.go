package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/rundoc"
)

// writeRunDoc writes a run document as a host must: 0600, in a directory of
// the test's own.
func writeRunDoc(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A secret given only in the run document reaches the workload, and is
// neither on the guest's /proc/cmdline, nor in QEMU's argv, nor in ginit's
// log; the kernel command line's ginit.env= wins over the document's; the
// document's hostname is the machine's.
func TestRunDocument(t *testing.T) {
	a := FindArtifacts(t)
	root := probeRoot(t, a, map[string]any{
		"Entrypoint": []string{"/app/probe"},
		"Cmd":        []string{"args", "from the image"},
		"Env":        []string{"MODE=image", "KEPT=image"},
	})
	disk := a.MakeDisk(t, root)
	const secret = "s3cret-4711-from-the-document"
	doc := writeRunDoc(t, `{"version":1,"cmd":["env"],"workdir":"/srv/doc","hostname":"docbox",
		"env":["API_TOKEN=`+secret+`","MODE=document"]}`)
	vm := VM{Disk: disk, NoNet: true, Append: "ginit.env=MODE=cmdline", FwCfg: map[string]string{rundoc.FwCfgName: doc}}
	if argv := strings.Join(a.QEMU(vm).Args(), " "); strings.Contains(argv, secret) {
		t.Errorf("QEMU's argv holds the secret: %s", argv)
	}
	res := a.Boot(t, vm)
	wantConsole(t, res,
		"ginit: run document read from fw_cfg opt/ginit/run (2 env entries)",
		"cwd=/srv/doc",
		"probe: env API_TOKEN="+secret,
		"probe: env MODE=cmdline",
		"probe: env KEPT=image",
		"probe: hostname=docbox",
		"probe: /proc/cmdline=",
		"ginit: entrypoint exited with status 0")
	noPanic(t, res)
	// Only the workload's own line shows it: not ginit's log, not the
	// kernel's "Kernel command line:", not /proc/cmdline.
	if n := strings.Count(res.Console, secret); n != 1 {
		t.Errorf("console shows the secret %d times; want once, from probe env:\n%s", n, res.Console)
	}
	for _, line := range strings.Split(res.Console, "\n") {
		if strings.Contains(line, "/proc/cmdline=") && !strings.Contains(line, "ginit.env=MODE=cmdline") {
			t.Errorf("guest /proc/cmdline line %q; want it to hold ginit.env=MODE=cmdline", line)
		}
	}
	if got := res.DebugExitStatus(); got != 0 {
		t.Errorf("exit status = %d; want 0", got)
	}
}

// A bad run document is one console line naming the field, never a value,
// and a failed boot (status 125): the host asked for something ginit
// cannot give, and running the image without it may be unsafe.
func TestRunDocumentInvalid(t *testing.T) {
	a := FindArtifacts(t)
	root := probeRoot(t, a, map[string]any{"Entrypoint": []string{"/app/probe"}, "Cmd": []string{"args", "from the image"}})
	disk := a.MakeDisk(t, root)
	doc := writeRunDoc(t, `{"version":1,"cmd":["env"],"env":["X=hidden-value"],"no_such_field":[]}`)
	res := a.Boot(t, VM{Disk: disk, NoNet: true, Append: "ginit.onerror=poweroff", FwCfg: map[string]string{rundoc.FwCfgName: doc}})
	wantConsole(t, res, `run document (fw_cfg opt/ginit/run): run document: unknown field "no_such_field"`)
	if strings.Contains(res.Console, `probe: arg[0]`) {
		t.Errorf("the workload ran without the host's document:\n%s", res.Console)
	}
	if got := res.DebugExitStatus(); got != 125 {
		t.Errorf("exit status = %d; want 125", got)
	}
	noPanic(t, res)
	if strings.Contains(res.Console, "hidden-value") {
		t.Errorf("console shows a value of the ignored document:\n%s", res.Console)
	}
}
