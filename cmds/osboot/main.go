// Command osboot finds the operating system installed on the machine's
// disks and boots it with kexec, as a boot loader would (LinuxBoot):
//
//	osboot [-list] [-load] [-entry SEL] [-append ARGS] [-wait DUR]
//
// It mounts every partition, and every disk without partitions, read-only
// under /run/osboot/NAME, reads their GRUB configs (/boot/grub/grub.cfg,
// grub2, an EFI system partition's EFI/*/grub.cfg), syslinux, extlinux and
// isolinux configs, Boot Loader Specification entries
// (/loader/entries/*.conf) and, on a filesystem where none of those gives
// an entry, the kernels of a plain /boot (vmlinuz-VERSION with its initrd,
// newest first, with /etc/kernel/cmdline or root= that filesystem), and
// prints the entries, each config's default first (an entry that boots
// what an earlier one boots is shown in short: it can still be picked). It
// loads the first
// entry whose kernel loads with kexec_file_load(2) (the next one when a
// kernel will not load, saying why), unmounts what it mounted, and boots
// the loaded kernel; with -load it leaves the booting to its caller, as
// ginit does for ginit.mode=boot.
//
// Flags:
//
//	-list          print the entries and stop
//	-load          load the entry and exit 0 without booting it
//	-entry SEL     only this entry: its number in the list, its title, its id,
//	               or its GRUB menu path as GRUB_DEFAULT takes it (1>0,
//	               gnulinux-advanced-UUID>gnulinux-VERSION-advanced-UUID)
//	-append ARGS   added to the end of the entry's kernel command line
//	-wait DUR      how long to wait for a disk with an entry to appear (default: look once)
//	-dir DIR       where the filesystems are mounted (default /run/osboot)
//	-v             also name the devices that hold no filesystem
//
// ginit runs "osboot -load -wait ROOTWAIT" for ginit.mode=boot, with -entry
// and -append from osboot.entry= and osboot.append= on the kernel command
// line, and kexecs the kernel once osboot has loaded it.
//
// Exit status: 0 when an entry was loaded (or, with -list, found); 1 when
// none was found or none loaded, with the reason as one line on stderr; 2
// for bad flags.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/cmdhelp"
	"github.com/ginit-dev/ginit/internal/osfind"
)

func main() {
	os.Exit(run(os.Args[1:], system{
		machine: &osfind.Machine{SysBlock: "/sys/class/block", DevDir: "/dev", MountDir: "/run/osboot"},
		load:    osfind.Load,
		boot:    reboot,
		stdout:  os.Stdout,
		stderr:  os.Stderr,
	}))
}

// system is what osboot works on; the tests give it fakes.
type system struct {
	machine        *osfind.Machine
	load           func(e osfind.Entry, extra string) error
	boot           func() error
	stdout, stderr io.Writer
}

// reboot starts the loaded kernel.
func reboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC); err != nil {
		return fmt.Errorf("reboot(LINUX_REBOOT_CMD_KEXEC): %w", err)
	}
	return nil
}

const help = `Usage: osboot [flags]

osboot finds the operating system installed on the machine's disks (GRUB,
syslinux and extlinux configs, Boot Loader Specification entries, or the
kernels of a plain /boot), prints its entries, loads the first that loads
with kexec_file_load(2) and boots it, as a boot loader would (LinuxBoot).
ginit runs "osboot -load" for ginit.mode=boot.

Examples:
  osboot -list                         print the entries and stop
  osboot -entry 2 -append "single"     boot the second entry, single-user
  osboot -entry 'Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-28-amd64'
  osboot -load -wait 10s               load the default entry, do not boot it

Flags:
`

func run(args []string, sys system) int {
	m := sys.machine
	fs := flag.NewFlagSet("osboot", flag.ContinueOnError)
	list := fs.Bool("list", false, "print the entries and stop")
	loadOnly := fs.Bool("load", false, "load the entry and exit 0 without booting it")
	verbose := fs.Bool("v", false, "also name the devices that hold no filesystem")
	entry := fs.String("entry", "", "only this entry, `SEL`: its number in the list, its title, its id or its GRUB menu path (A>B)")
	extra := fs.String("append", "", "`ARGS` added to the end of the entry's kernel command line")
	dir := fs.String("dir", m.MountDir, "`DIR` where the filesystems are mounted")
	wait := fs.Duration("wait", 0, "how long to wait for a disk with an entry to appear (0: look once)")
	switch err := cmdhelp.Parse(fs, args, sys.stdout, help, ""); {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(sys.stderr, "osboot: %v\n", err)
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(sys.stderr, "osboot: unexpected argument %q (see osboot --help)\n", fs.Arg(0))
		return 2
	}
	say := func(format string, a ...any) { fmt.Fprintf(sys.stdout, "osboot: "+format+"\n", a...) }
	fail := func(format string, a ...any) int {
		fmt.Fprintf(sys.stderr, "osboot: "+format+"\n", a...)
		return 1
	}
	m.MountDir = *dir
	m.Logf = say
	if *verbose {
		m.Debugf = say
	}
	// Whatever happens, what was mounted is unmounted before osboot ends,
	// and before the kernel it loaded boots.
	closed := false
	closeAll := func() {
		if !closed {
			closed = true
			if err := m.Close(); err != nil {
				say("%v", err)
			}
		}
	}
	defer closeAll()

	start := time.Now()
	entries, problems, err := m.Find(*wait)
	for _, p := range problems {
		say("skipped: %v", p)
	}
	if err != nil {
		return fail("no operating system found on the disks: %v", err)
	}
	say("found %d boot entries in %v:", len(entries), time.Since(start).Round(time.Millisecond))
	// An entry that boots what an earlier one boots (Debian's top entry and
	// its twin in the submenu) is shown in short, and stays selectable.
	same := osfind.SameBoot(entries)
	for i, e := range entries {
		if same[i] != i {
			say("[%d] %s: boots as [%d]", i, e.Brief(), same[i])
			continue
		}
		say("[%d] %s", i, e)
	}
	if *list {
		return 0
	}
	picked, err := osfind.Select(entries, *entry)
	if err != nil {
		return fail("%v", err)
	}
	var errs []string
	tried := map[int]bool{}
	for _, i := range picked {
		if tried[same[i]] {
			continue // the same boot failed already
		}
		tried[same[i]] = true
		e := entries[i]
		say("loading [%d] %s with command line %q", i, e.Name, osfind.JoinCmdline(e.Cmdline, *extra))
		if err := sys.load(e, *extra); err != nil {
			say("[%d] %s: %v", i, e.Name, err)
			errs = append(errs, fmt.Sprintf("[%d] %s: %v", i, e.Name, err))
			continue
		}
		say("loaded [%d] %s", i, e.Name)
		closeAll()
		if *loadOnly {
			return 0
		}
		say("booting it")
		if err := sys.boot(); err != nil {
			return fail("%v", err)
		}
		return 0
	}
	if len(errs) == 1 {
		return fail("%s", errs[0])
	}
	return fail("no entry loaded: %s", strings.Join(errs, "; "))
}
