package integration

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

// rescueSteps are what a person types first into a rescue shell, each
// followed by an echo whose output differs from its typed text, so the
// console shows where each command's output ends: ls, cat, dmesg, mount,
// ip. want is a line of each command's output.
var rescueSteps = []struct{ typed, want string }{
	{`ls /`, "bbin"},
	{`cat /proc/cmdline`, "root=/dev/vdz ginit.rootwait=1s"},
	{`dmesg`, "Run /init as init process"},
	{`mount`, "proc /proc proc"},
	{`ip addr`, "inet 127.0.0.1/8"},
}

// A failed boot hands the console a rescue shell, and what is typed there
// runs. The test drives it as a person does: scripts/run-qemu.sh (with a
// timeout) in a terminal, each line ended by Enter, which a terminal sends
// as CR. A QEMU fed through a pipe with "\n", as the other console tests
// are, would hide a shell that only a terminal breaks. exit powers the
// machine off with the boot failure's status, 125.
func TestRescueShellInTerminal(t *testing.T) {
	for _, c := range []struct {
		name string
		find func(*testing.T) Artifacts
	}{{"minimal", FindArtifacts}, {"linuxboot", FindLinuxboot}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := c.find(t)
			// The first line waits for the shell's first prompt; each next
			// one for the end of the output before it.
			triggers := []qemu.Trigger{{When: "starting a rescue shell on the console"}, {When: "\n$ ", Input: "echo ab\"\"cd\r"}}
			last := "abcd"
			for i, s := range rescueSteps {
				triggers = append(triggers, qemu.Trigger{When: last, Input: s.typed + "; echo " + stepTyped(i) + "\r"})
				last = stepOutput(i)
			}
			triggers = append(triggers, qemu.Trigger{When: last, Input: "exit\r"})
			argv := []string{"scripts/run-qemu.sh", "--kernel", a.Kernel, "--initrd", a.Initrd, "--net", "none",
				"--timeout", "150", "--append", "root=/dev/vdz ginit.rootwait=1s ginit.onerror=shell"}
			res, err := qemu.RunInTerminal(context.Background(), a.Repo, argv, triggers, 170*time.Second)
			if err != nil {
				t.Fatalf("%v: %v; console:\n%s", argv, err, res.Console)
			}
			console := strings.ReplaceAll(res.Console, "\r", "")
			if !strings.Contains(console, "abcd") {
				t.Errorf("typed `echo ab\"\"cd`: console lacks the line abcd")
			}
			for i, s := range rescueSteps {
				if out := stepOutputIn(console, i); !strings.Contains(out, s.want) {
					t.Errorf("typed `%s`: its output %q lacks %q", s.typed, out, s.want)
				}
			}
			wantConsole(t, res, "ginit: poweroff")
			noPanic(t, res)
			// run-qemu.sh exits with the status ginit gave isa-debug-exit.
			if res.QEMUExit != 125 {
				t.Errorf("run-qemu.sh status after exit in the rescue shell = %d; want 125 (boot failed)", res.QEMUExit)
			}
			if t.Failed() {
				t.Logf("console:\n%s", console)
			}
		})
	}
}

// stepTyped is the echo typed after step i; stepOutput is what it prints,
// which its typed text does not contain.
func stepTyped(i int) string  { return "step-$((" + strconv.Itoa(i) + "+1))-done" }
func stepOutput(i int) string { return "step-" + strconv.Itoa(i+1) + "-done" }

// stepOutputIn returns what the console shows between the end of step i-1
// (or the abcd of the first echo) and the end of step i: the next line is
// typed as soon as a step's end shows, so the terminal's echo of it, which
// has none of the outputs, may come anywhere in there.
func stepOutputIn(console string, i int) string {
	from := "abcd"
	if i > 0 {
		from = stepOutput(i - 1)
	}
	_, rest, ok := strings.Cut(console, from)
	if !ok {
		return ""
	}
	out, _, _ := strings.Cut(rest, stepOutput(i))
	return out
}
