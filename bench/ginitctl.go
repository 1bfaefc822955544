package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ginit-dev/ginit/internal/qemu"
)

var ginitctlOnly = flag.Bool("ginitctl-only", false, "print only the ginitctl run table (needs build/minimal.cpio)")

// firstLine is what the bench workload prints first.
const firstLine = "probe: arg[0]="

// ginitctlTable measures `ginitctl run --rm IMAGE` from the command to the
// workload's first line: warm (the image's base cached) and cold (a fresh
// state directory: the conversion first), beside the same boot assembled
// by hand (the disk made once with oci2disk, QEMU started through
// internal/qemu with the same kernel, initramfs, memory, network and
// console log level) and
// the floor (the kernel with an /init that prints at once). The rows run
// interleaved, so a load change on the machine touches each alike. Then
// the qcow2 overlay's creation, the one disk step a warm run adds.
func ginitctlTable(o options, work string) error {
	root := filepath.Join(work, "ctlroot")
	if err := goBuild(filepath.Join(root, "app/probe"), "./integration/testdata/probe"); err != nil {
		return err
	}
	ctl := filepath.Join(work, "ginitctl")
	if err := goBuild(ctl, "./cmds/ginitctl"); err != nil {
		return err
	}
	disk := filepath.Join(work, "ctl.img")
	cmd := exec.Command("go", "run", "./cmds/oci2disk", "-q", "--entrypoint", "/app/probe args first", "dir:"+root, disk)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("oci2disk: %v\n%s", err, out)
	}
	floor, err := floorInitramfs(work)
	if err != nil {
		return err
	}
	initrd, err := filepath.Abs(filepath.Join(o.build, "minimal.cpio"))
	if err != nil {
		return err
	}
	kernel, err := filepath.Abs(o.kernel)
	if err != nil {
		return err
	}
	warmState := filepath.Join(work, "ctlstate")
	ginitctl := func(state string) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			return firstOutput(ctl, "run", "--rm", "--state", state, "--kernel", kernel, "--initrd", initrd,
				"--entrypoint", "/app/probe", "dir:"+root, "args", "first")
		}
	}
	// The cache holds the base from here on: the warm row boots over it.
	if _, err := ginitctl(warmState)(); err != nil {
		return fmt.Errorf("first ginitctl run: %w", err)
	}
	// tries: the floor's /init powers off right after its line, which a
	// loaded machine's UART may not have sent yet; such a boot is run again.
	byHand := func(vm qemu.VM, when string, tries int) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			vm.Triggers = []qemu.Trigger{{When: when}}
			for try := 1; ; try++ {
				res, err := vm.Run(context.Background())
				if err != nil {
					return 0, fmt.Errorf("%v\n%s", err, res.Console)
				}
				if len(res.TriggerTimes) > 0 {
					return res.TriggerTimes[0], nil
				}
				if try == tries {
					return 0, fmt.Errorf("no %q on the console in %d boots; the last:\n%s", when, tries, res.Console)
				}
			}
		}
	}
	type ctlRow struct {
		name string
		run  func() (time.Duration, error)
		took []time.Duration
	}
	rows := []*ctlRow{
		{name: "floor: the kernel, an /init that prints at once", run: byHand(qemu.VM{Kernel: o.kernel, Initrd: floor, NoNet: true}, "floorinit: started", 3)},
		{name: "by hand: oci2disk's disk, QEMU through internal/qemu", run: byHand(qemu.VM{Kernel: o.kernel, Initrd: initrd, Disk: disk, MemMB: 512, Append: "loglevel=3"}, firstLine, 1)},
		{name: "ginitctl run --rm, warm (the base cached)", run: ginitctl(warmState)},
	}
	cold := &ctlRow{name: "ginitctl run --rm, cold (the conversion first)"}
	rows = append(rows, cold)
	for i := 0; i < o.boots; i++ {
		cold.run = ginitctl(filepath.Join(work, fmt.Sprintf("coldstate%d", i)))
		for _, r := range rows {
			took, err := r.run()
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			r.took = append(r.took, took)
		}
	}
	fmt.Printf("## ginitctl run: from the command to the workload's first line, median of %d, interleaved\n\n", o.boots)
	fmt.Println("| run | first line | over the hand-assembled boot | over the floor |")
	fmt.Println("|---|---:|---:|---:|")
	floorMed, handMed := median(rows[0].took), median(rows[1].took)
	for _, r := range rows {
		m := median(r.took)
		fmt.Printf("| %s | %d ms | %+d ms (%.2fx) | %+d ms |\n", r.name, m.Milliseconds(),
			(m - handMed).Milliseconds(), float64(m)/float64(handMed), (m - floorMed).Milliseconds())
	}
	overlay, err := overlayTime(disk, work, 20)
	if err != nil {
		return err
	}
	fmt.Printf("\nA qcow2 overlay over the raw base (qemu-img create, as each run makes one): median %.1f ms of 20.\n\n",
		float64(overlay.Microseconds())/1000)
	return nil
}

// firstOutput runs argv and returns how long it took to print firstLine;
// it waits for argv to end, which must succeed.
func firstOutput(argv ...string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var took time.Duration
	var console strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if took == 0 && strings.Contains(sc.Text(), firstLine) {
			took = time.Since(start)
		}
		console.WriteString(sc.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%q: %v\n%s%s", argv, err, console.String(), stderr.String())
	}
	if took == 0 {
		return 0, fmt.Errorf("%q printed no %q:\n%s", argv, firstLine, console.String())
	}
	return took, nil
}

// overlayTime is the median time of n qcow2 overlays over base, made as
// vmrun makes each VM's.
func overlayTime(base, work string, n int) (time.Duration, error) {
	var took []time.Duration
	for i := 0; i < n; i++ {
		path := filepath.Join(work, fmt.Sprintf("overlay%d.qcow2", i))
		start := time.Now()
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, path).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("qemu-img create: %v: %s", err, out)
		}
		took = append(took, time.Since(start))
		os.Remove(path)
	}
	return median(took), nil
}
