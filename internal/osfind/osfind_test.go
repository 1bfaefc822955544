package osfind

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mkfs makes a filesystem for the tests: a temporary tree holding files
// (a value starting with "-> " makes a symbolic link).
func mkfs(t *testing.T, dev, uuid string, files map[string]string) *FS {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &FS{Dev: dev, Dir: dir, Type: "ext4", UUID: uuid, Disk: -1}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// summary is what the tests compare: name, kernel, initrds, cmdline.
type summary struct {
	Name, Kernel, Initrds, Cmdline string
	Default                        bool
}

func summarize(entries []Entry) []summary {
	var out []summary
	for _, e := range entries {
		var initrds []string
		for _, i := range e.Initrds {
			initrds = append(initrds, i.String())
		}
		out = append(out, summary{e.Name, e.Kernel.String(), strings.Join(initrds, ","), e.Cmdline, e.Default})
	}
	return out
}

func checkEntries(t *testing.T, what string, got []Entry, want []summary) {
	t.Helper()
	g := summarize(got)
	if len(g) != len(want) {
		t.Errorf("%s: %d entries; want %d:\n got %+v\nwant %+v", what, len(g), len(want), g, want)
		return
	}
	for i := range want {
		if g[i] != want[i] {
			t.Errorf("%s: entry %d = %+v; want %+v", what, i, g[i], want[i])
		}
	}
}

func noProblems(t *testing.T, problems []error) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("problem: %v", p)
	}
}

const debianUUID = "3f1b9a4e-27c1-4bd8-9d5e-0c2a4f7e6a11"

func debianFS(t *testing.T, extra map[string]string) *FS {
	files := map[string]string{
		"boot/grub/grub.cfg":               readTestdata(t, "debian12-grub.cfg"),
		"boot/vmlinuz-6.1.0-18-amd64":      "kernel 18",
		"boot/initrd.img-6.1.0-18-amd64":   "initrd 18",
		"boot/vmlinuz-6.1.0-9-amd64":       "kernel 9",
		"boot/initrd.img-6.1.0-9-amd64":    "initrd 9",
		"vmlinuz":                          "-> boot/vmlinuz-6.1.0-18-amd64",
		"boot/grub/i386-pc/normal.mod":     "",
		"usr/share/grub/unicode.pf2":       "",
		"etc/default/grub":                 "GRUB_DEFAULT=0\n",
		"boot/grub/fonts/unicode.pf2":      "",
		"boot/grub/locale/en@quot.mo":      "",
		"boot/grub/grubenv.unused-by-test": "",
	}
	for k, v := range extra {
		files[k] = v
	}
	f := mkfs(t, "/dev/vda2", debianUUID, files)
	f.Disk, f.Part = 0, 2
	return f
}

// Debian's own grub.cfg, as grub-mkconfig writes it: functions, if blocks,
// search by UUID, a submenu; the UEFI-only entry stays out on a PC.
func TestGrubDebian(t *testing.T) {
	root := debianFS(t, nil)
	entries, problems := Scan([]*FS{root})
	noProblems(t, problems)
	cmd := "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=" + debianUUID + " ro quiet"
	checkEntries(t, "debian", entries, []summary{
		{"Debian GNU/Linux", "/dev/vda2:/boot/vmlinuz-6.1.0-18-amd64", "/dev/vda2:/boot/initrd.img-6.1.0-18-amd64", cmd, true},
		// The same boot as the default, in the submenu: an entry of its own.
		{"Debian GNU/Linux, with Linux 6.1.0-18-amd64", "/dev/vda2:/boot/vmlinuz-6.1.0-18-amd64", "/dev/vda2:/boot/initrd.img-6.1.0-18-amd64", cmd, false},
		{"Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)", "/dev/vda2:/boot/vmlinuz-6.1.0-18-amd64", "/dev/vda2:/boot/initrd.img-6.1.0-18-amd64", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=" + debianUUID + " ro single", false},
		{"Debian GNU/Linux, with Linux 6.1.0-9-amd64", "/dev/vda2:/boot/vmlinuz-6.1.0-9-amd64", "/dev/vda2:/boot/initrd.img-6.1.0-9-amd64", "BOOT_IMAGE=/boot/vmlinuz-6.1.0-9-amd64 root=UUID=" + debianUUID + " ro quiet", false},
	})
	if len(entries) > 0 {
		if got, want := entries[0].ID, "gnulinux-simple-"+debianUUID; got != want {
			t.Errorf("first entry's ID = %q; want %q", got, want)
		}
		if got, want := entries[0].Source.String(), "/dev/vda2:/boot/grub/grub.cfg"; got != want {
			t.Errorf("first entry's source = %q; want %q", got, want)
		}
	}
}

// GRUB's default, however it is given, puts its entry first.
func TestGrubDefault(t *testing.T) {
	for _, tc := range []struct {
		name    string
		grubenv string
		want    string
	}{
		{"no grubenv", "", "Debian GNU/Linux"},
		{"next_entry by index path", "next_entry=1>2\n", "Debian GNU/Linux, with Linux 6.1.0-9-amd64"},
		{"next_entry by title path", "next_entry=Advanced options for Debian GNU/Linux>Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)\n", "Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)"},
		{"next_entry by id path", "next_entry=gnulinux-advanced-" + debianUUID + ">gnulinux-6.1.0-9-amd64-advanced-" + debianUUID + "\n", "Debian GNU/Linux, with Linux 6.1.0-9-amd64"},
		{"next_entry that names nothing", "next_entry=7\n", "Debian GNU/Linux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]string{}
			if tc.grubenv != "" {
				extra["boot/grub/grubenv"] = "# GRUB Environment Block\n" + tc.grubenv + strings.Repeat("#", 100)
			}
			entries, problems := Scan([]*FS{debianFS(t, extra)})
			noProblems(t, problems)
			if len(entries) == 0 {
				t.Fatal("no entries")
			}
			if got := entries[0].Name; got != tc.want {
				t.Errorf("first entry = %q; want %q", got, tc.want)
			}
		})
	}
}

// set default= in every form GRUB reads.
func TestGrubSetDefault(t *testing.T) {
	menu := `
menuentry 'A' --id a { linux /a root=/dev/a }
submenu 'More' --id more {
	menuentry 'B' --id b { linux /b root=/dev/b }
	menuentry 'C' --id=c { linux /c root=/dev/c }
}
menuentry "D" { linux /d root=/dev/d; }
`
	for _, tc := range []struct{ def, saved, want string }{
		{"", "", "A"},
		{"0", "", "A"},
		{"2", "", "D"},
		{"1>1", "", "C"},
		{"more>b", "", "B"},
		{"More>C", "", "C"},
		{"D", "", "D"},
		{"saved", "1>0", "B"},
		{`"${saved_entry}"`, "d-has-no-id", "A"},
		{"9", "", "A"},
	} {
		cfg := menu
		if tc.def != "" {
			cfg = "set default=" + tc.def + "\n" + menu
		}
		files := map[string]string{"boot/grub/grub.cfg": cfg, "a": "", "b": "", "c": "", "d": ""}
		if tc.saved != "" {
			cfg = "load_env\n" + cfg
			files["boot/grub/grub.cfg"] = cfg
			files["boot/grub/grubenv"] = "# GRUB Environment Block\nsaved_entry=" + tc.saved + "\n####"
		}
		entries, problems := Scan([]*FS{mkfs(t, "/dev/sda1", "", files)})
		noProblems(t, problems)
		if len(entries) != 4 {
			t.Errorf("default=%s: %d entries; want 4: %+v", tc.def, len(entries), summarize(entries))
			continue
		}
		if got := entries[0].Name; got != tc.want || !entries[0].Default {
			t.Errorf("default=%s saved_entry=%s: first entry %q (default %v); want %q (default)", tc.def, tc.saved, got, entries[0].Default, tc.want)
		}
	}
}

// A separate /boot partition, found by UUID from an EFI system partition's
// grub.cfg that loads the real config: the entries come from the boot
// partition's config, once.
func TestGrubSearchAndConfigfile(t *testing.T) {
	esp := mkfs(t, "/dev/nvme0n1p1", "", map[string]string{
		"EFI/debian/grub.cfg": "search.fs_uuid 1111-aaaa root hd0,gpt2\nset prefix=($root)'/grub'\nconfigfile $prefix/grub.cfg\n",
	})
	esp.Type, esp.UUID = "vfat", "ABCD-1234"
	boot := mkfs(t, "/dev/nvme0n1p2", "1111-AAAA", map[string]string{
		"grub/grub.cfg": `set default="0"
menuentry 'Linux' {
	search --no-floppy --fs-uuid --set=root 1111-aaaa
	linux /vmlinuz-6.6 root=/dev/nvme0n1p3 ro "quoted arg with spaces"
	initrd /intel-ucode.img /initramfs-6.6.img
}
menuentry 'Linux, by label' {
	search --label --set boot-part
	search --label --set=myroot BOOT
	linux ($myroot)/vmlinuz-6.6 root=LABEL=root
}
menuentry 'Linux, by file' {
	search --file --set /vmlinuz-6.6
	linux /vmlinuz-6.6 by=file
}
`,
		"vmlinuz-6.6":       "k",
		"initramfs-6.6.img": "i",
		"intel-ucode.img":   "u",
	})
	boot.Label = "BOOT"
	entries, problems := Scan([]*FS{esp, boot})
	noProblems(t, problems)
	checkEntries(t, "esp+boot", entries, []summary{
		{"Linux", "/dev/nvme0n1p2:/vmlinuz-6.6", "/dev/nvme0n1p2:/intel-ucode.img,/dev/nvme0n1p2:/initramfs-6.6.img", `BOOT_IMAGE=/vmlinuz-6.6 root=/dev/nvme0n1p3 ro "quoted arg with spaces"`, true},
		{"Linux, by label", "/dev/nvme0n1p2:/vmlinuz-6.6", "", "BOOT_IMAGE=(/dev/nvme0n1p2)/vmlinuz-6.6 root=LABEL=root", false},
		{"Linux, by file", "/dev/nvme0n1p2:/vmlinuz-6.6", "", "BOOT_IMAGE=/vmlinuz-6.6 by=file", false},
	})
	if len(entries) > 0 {
		if got, want := entries[0].Source.String(), "/dev/nvme0n1p2:/grub/grub.cfg"; got != want {
			t.Errorf("source = %s; want %s", got, want)
		}
	}
}

// set root='hdN,gptM' names the disk's Nth partition; a name osfind cannot
// map leaves the config's own filesystem as root.
func TestGrubDeviceNames(t *testing.T) {
	cfg := `menuentry 'on hd0,gpt3' { set root='hd0,gpt3'; linux /vmlinuz root=x; }
menuentry 'on (hd1)' { linux (hd1)/vmlinuz root=y; }
menuentry 'on (lvm/vg-root)' { set root=(lvm/vg-root); linux /boot/vmlinuz root=z; }
`
	a := mkfs(t, "/dev/sda1", "", map[string]string{"boot/grub/grub.cfg": cfg, "boot/vmlinuz": "a"})
	a.Disk, a.Part = 0, 1
	b := mkfs(t, "/dev/sda3", "", map[string]string{"vmlinuz": "b"})
	b.Disk, b.Part = 0, 3
	c := mkfs(t, "/dev/sdb", "", map[string]string{"vmlinuz": "c"})
	c.Disk, c.Part = 1, 0
	entries, problems := Scan([]*FS{a, b, c})
	noProblems(t, problems)
	checkEntries(t, "device names", entries, []summary{
		{"on hd0,gpt3", "/dev/sda3:/vmlinuz", "", "BOOT_IMAGE=/vmlinuz root=x", true},
		{"on (hd1)", "/dev/sdb:/vmlinuz", "", "BOOT_IMAGE=(hd1)/vmlinuz root=y", false},
		{"on (lvm/vg-root)", "/dev/sda1:/boot/vmlinuz", "", "BOOT_IMAGE=/boot/vmlinuz root=z", false},
	})
}

// Fedora: grub.cfg reads grubenv and runs blscfg; the BLS entries take
// $kernelopts from grubenv, and saved_entry picks the default.
func TestGrubBLSFedora(t *testing.T) {
	const machine = "8d1f4e3b2a6c4d5e9f0a1b2c3d4e5f60"
	root := mkfs(t, "/dev/vda3", "", map[string]string{
		"boot/grub2/grub.cfg": `
set pager=1
if [ -f ${config_directory}/grubenv ]; then
  load_env -f ${config_directory}/grubenv
elif [ -s $prefix/grubenv ]; then
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="${saved_entry}"
fi
insmod blscfg
blscfg
`,
		"boot/grub2/grubenv": "# GRUB Environment Block\nsaved_entry=" + machine + "-6.5.6-300.fc39.x86_64\nkernelopts=root=UUID=abcd ro rhgb quiet\nboot_success=0\n#####",
		"boot/loader/entries/" + machine + "-6.5.6-300.fc39.x86_64.conf": "title Fedora Linux (6.5.6-300.fc39.x86_64) 39 (Workstation Edition)\nversion 6.5.6-300.fc39.x86_64\nlinux /vmlinuz-6.5.6-300.fc39.x86_64\ninitrd /initramfs-6.5.6-300.fc39.x86_64.img $tuned_initrd\noptions $kernelopts $tuned_params\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class fedora\n",
		"boot/loader/entries/" + machine + "-6.8.9-300.fc40.x86_64.conf": "title Fedora Linux (6.8.9-300.fc40.x86_64) 40\nversion 6.8.9-300.fc40.x86_64\nlinux /vmlinuz-6.8.9-300.fc40.x86_64\ninitrd /initramfs-6.8.9-300.fc40.x86_64.img\noptions root=UUID=abcd ro\noptions systemd.unit=multi-user.target\n",
		"boot/loader/entries/" + machine + "-0-rescue.conf":              "title Fedora Linux (0-rescue-" + machine + ") 39\nversion 0-rescue-" + machine + "\nlinux /vmlinuz-0-rescue-" + machine + "\ninitrd /initramfs-0-rescue-" + machine + ".img\noptions $kernelopts\n",
		"boot/vmlinuz-6.5.6-300.fc39.x86_64":                             "k",
		"boot/initramfs-6.5.6-300.fc39.x86_64.img":                       "i",
		"boot/vmlinuz-6.8.9-300.fc40.x86_64":                             "k",
		"boot/initramfs-6.8.9-300.fc40.x86_64.img":                       "i",
		"boot/vmlinuz-0-rescue-" + machine:                               "k",
		"boot/initramfs-0-rescue-" + machine + ".img":                    "i",
	})
	entries, problems := Scan([]*FS{root})
	noProblems(t, problems)
	checkEntries(t, "fedora", entries, []summary{
		{"Fedora Linux (6.5.6-300.fc39.x86_64) 39 (Workstation Edition)", "/dev/vda3:/boot/vmlinuz-6.5.6-300.fc39.x86_64", "/dev/vda3:/boot/initramfs-6.5.6-300.fc39.x86_64.img", "root=UUID=abcd ro rhgb quiet", true},
		{"Fedora Linux (6.8.9-300.fc40.x86_64) 40", "/dev/vda3:/boot/vmlinuz-6.8.9-300.fc40.x86_64", "/dev/vda3:/boot/initramfs-6.8.9-300.fc40.x86_64.img", "root=UUID=abcd ro systemd.unit=multi-user.target", false},
		{"Fedora Linux (0-rescue-" + machine + ") 39", "/dev/vda3:/boot/vmlinuz-0-rescue-" + machine, "/dev/vda3:/boot/initramfs-0-rescue-" + machine + ".img", "root=UUID=abcd ro rhgb quiet", false},
	})
	for _, e := range entries {
		if e.Kind != GRUB {
			t.Errorf("entry %q kind %s; want grub (blscfg found it, not a BLS scan of its own)", e.Name, e.Kind)
		}
	}
}

// BLS entries without GRUB: systemd-boot's loader.conf default, newest
// version first, several initrd and options lines; an EFI entry and one
// whose kernel is missing are problems that name their files.
func TestBLS(t *testing.T) {
	esp := mkfs(t, "/dev/vda1", "", map[string]string{
		"loader/loader.conf":            "timeout 3\ndefault arch-lts*\n",
		"loader/entries/arch.conf":      "title   Arch Linux\nlinux   /vmlinuz-linux\ninitrd  /intel-ucode.img\ninitrd  /initramfs-linux.img\noptions root=PARTUUID=1234 rw\noptions quiet\n",
		"loader/entries/arch-lts.conf":  "title\tArch Linux LTS\nlinux\t/vmlinuz-linux-lts\ninitrd\t/initramfs-linux-lts.img\noptions\troot=PARTUUID=1234 rw\n",
		"loader/entries/fw.conf":        "title Firmware\nefi /EFI/tools/shell.efi\n",
		"loader/entries/gone.conf":      "title Gone\nlinux /vmlinuz-gone\n",
		"loader/entries/sorted-2.conf":  "title S2\nsort-key b\nversion 2\nlinux /vmlinuz-linux\n",
		"loader/entries/sorted-10.conf": "title S10\nsort-key b\nversion 10\nlinux /vmlinuz-linux\noptions v=10\n",
		"loader/entries/sorted-a.conf":  "title SA\nsort-key a\nlinux /vmlinuz-linux\noptions a\n",
		"vmlinuz-linux":                 "k",
		"vmlinuz-linux-lts":             "k",
		"initramfs-linux.img":           "i",
		"initramfs-linux-lts.img":       "i",
		"intel-ucode.img":               "u",
	})
	entries, problems := Scan([]*FS{esp})
	checkEntries(t, "bls", entries, []summary{
		{"Arch Linux LTS", "/dev/vda1:/vmlinuz-linux-lts", "/dev/vda1:/initramfs-linux-lts.img", "root=PARTUUID=1234 rw", true},
		{"SA", "/dev/vda1:/vmlinuz-linux", "", "a", false},
		{"S10", "/dev/vda1:/vmlinuz-linux", "", "v=10", false},
		{"S2", "/dev/vda1:/vmlinuz-linux", "", "", false},
		{"Arch Linux", "/dev/vda1:/vmlinuz-linux", "/dev/vda1:/intel-ucode.img,/dev/vda1:/initramfs-linux.img", "root=PARTUUID=1234 rw quiet", false},
	})
	wantProblems := []string{
		"/dev/vda1:/loader/entries/fw.conf: an EFI program (efi /EFI/tools/shell.efi), not a Linux kernel",
		`/dev/vda1:/loader/entries/gone.conf: entry "Gone": /dev/vda1:/vmlinuz-gone: no such file or directory`,
	}
	if len(problems) != len(wantProblems) {
		t.Fatalf("problems = %v; want %q", problems, wantProblems)
	}
	for i, p := range problems {
		if p.Error() != wantProblems[i] {
			t.Errorf("problem %d = %q; want %q", i, p, wantProblems[i])
		}
	}
	if !errors.Is(problems[1], fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false; want true", problems[1])
	}
}

// syslinux/extlinux: DEFAULT and MENU DEFAULT, global and per-label APPEND,
// INITRD lists and initrd= in APPEND, INCLUDE, relative paths, and the
// entries that boot no Linux kernel left out.
func TestSyslinux(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		want      []summary
	}{
		{
			name: "extlinux",
			cfg: `# comment
UI menu.c32
PROMPT 0
TIMEOUT 50
DEFAULT linux-old
APPEND console=ttyS0
INCLUDE more.conf

LABEL linux
	MENU LABEL ^Linux 6.6
	LINUX ../vmlinuz-6.6
	INITRD ../initramfs-6.6.img,../ucode.img
	APPEND root=/dev/sda2 ro

LABEL hdt
	MENU LABEL Hardware info
	COM32 hdt.c32

LABEL menu
	KERNEL vesamenu.c32

TEXT HELP
LABEL not-a-label
ENDTEXT
`,
			want: []summary{
				{"linux-old", "/dev/sda1:/boot/vmlinuz-6.1", "/dev/sda1:/boot/initrd-6.1", "console=ttyS0", true},
				{"Linux 6.6", "/dev/sda1:/boot/vmlinuz-6.6", "/dev/sda1:/boot/initramfs-6.6.img,/dev/sda1:/boot/ucode.img", "root=/dev/sda2 ro", false},
			},
		},
		{
			name: "menu default",
			cfg: `DEFAULT vesamenu.c32
LABEL a
	KERNEL /boot/vmlinuz-6.6
	APPEND initrd=/boot/initramfs-6.6.img root=/dev/a
LABEL b
	MENU DEFAULT
	LINUX /boot/vmlinuz-6.1
	APPEND -
`,
			want: []summary{
				{"b", "/dev/sda1:/boot/vmlinuz-6.1", "", "", true},
				{"a", "/dev/sda1:/boot/vmlinuz-6.6", "/dev/sda1:/boot/initramfs-6.6.img", "root=/dev/a", false},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := mkfs(t, "/dev/sda1", "", map[string]string{
				"boot/extlinux/extlinux.conf": tc.cfg,
				"boot/extlinux/more.conf":     "LABEL linux-old\n  KERNEL /boot/vmlinuz-6.1\n  INITRD /boot/initrd-6.1\n",
				"boot/vmlinuz-6.6":            "k",
				"boot/vmlinuz-6.1":            "k",
				"boot/initramfs-6.6.img":      "i",
				"boot/initrd-6.1":             "i",
				"boot/ucode.img":              "u",
			})
			entries, problems := Scan([]*FS{root})
			noProblems(t, problems)
			checkEntries(t, tc.name, entries, tc.want)
		})
	}
}

// A plain /boot: newest kernel first, each with its own initrd, the command
// line from /etc/kernel/cmdline or root= the filesystem itself.
func TestPlainBoot(t *testing.T) {
	files := map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":      "k9",
		"boot/initrd.img-6.1.0-9-amd64":   "i9",
		"boot/vmlinuz-6.1.0-18-amd64":     "k18",
		"boot/initrd.img-6.1.0-18-amd64":  "i18",
		"boot/vmlinuz-6.1.0-18-amd64.old": "old",
		"boot/vmlinuz-6.10.2-arch1":       "k610",
		"boot/initramfs-6.10.2-arch1.img": "i610",
		"boot/vmlinuz-5.15.0":             "-> vmlinuz-6.1.0-9-amd64",
		"boot/config-6.1.0-18-amd64":      "",
	}
	want := func(cmd string) []summary {
		return []summary{
			{"Linux 6.10.2-arch1", "/dev/vda1:/boot/vmlinuz-6.10.2-arch1", "/dev/vda1:/boot/initramfs-6.10.2-arch1.img", cmd, false},
			{"Linux 6.1.0-18-amd64", "/dev/vda1:/boot/vmlinuz-6.1.0-18-amd64", "/dev/vda1:/boot/initrd.img-6.1.0-18-amd64", cmd, false},
			{"Linux 6.1.0-9-amd64", "/dev/vda1:/boot/vmlinuz-6.1.0-9-amd64", "/dev/vda1:/boot/initrd.img-6.1.0-9-amd64", cmd, false},
			{"Linux 5.15.0", "/dev/vda1:/boot/vmlinuz-5.15.0", "", cmd, false},
		}
	}
	entries, problems := Scan([]*FS{mkfs(t, "/dev/vda1", "0d6c-uuid", files)})
	noProblems(t, problems)
	checkEntries(t, "uuid", entries, want("root=UUID=0d6c-uuid ro"))

	entries, _ = Scan([]*FS{mkfs(t, "/dev/vda1", "", files)})
	checkEntries(t, "no uuid", entries, want("root=/dev/vda1 ro"))

	files["etc/kernel/cmdline"] = "# the command line\nroot=/dev/mapper/root\n  rw quiet\n"
	entries, _ = Scan([]*FS{mkfs(t, "/dev/vda1", "0d6c-uuid", files)})
	checkEntries(t, "/etc/kernel/cmdline", entries, want("root=/dev/mapper/root rw quiet"))
}

// Configs come before plain kernels, in the order of the filesystems; a
// filesystem whose config gave entries adds none of its plain kernels.
func TestScanOrder(t *testing.T) {
	plainFS := mkfs(t, "/dev/vda1", "", map[string]string{"boot/vmlinuz-1": "k"})
	grubFS := mkfs(t, "/dev/vdb1", "", map[string]string{
		"boot/grub/grub.cfg": "menuentry x { linux /boot/vmlinuz-2 root=/dev/vdb1 }\n",
		"boot/vmlinuz-2":     "k",
		"boot/vmlinuz-3":     "k",
	})
	brokenFS := mkfs(t, "/dev/vdc1", "", map[string]string{
		"boot/grub/grub.cfg": "menuentry y { linux /boot/vmlinuz-missing }\n",
		"boot/vmlinuz-4":     "k",
	})
	entries, problems := Scan([]*FS{plainFS, grubFS, brokenFS})
	checkEntries(t, "order", entries, []summary{
		{"x", "/dev/vdb1:/boot/vmlinuz-2", "", "BOOT_IMAGE=/boot/vmlinuz-2 root=/dev/vdb1", true},
		{"Linux 1", "/dev/vda1:/boot/vmlinuz-1", "", "root=/dev/vda1 ro", false},
		{"Linux 4", "/dev/vdc1:/boot/vmlinuz-4", "", "root=/dev/vdc1 ro", false},
	})
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), "/dev/vdc1:/boot/vmlinuz-missing") {
		t.Errorf("problems = %v; want one naming /dev/vdc1:/boot/vmlinuz-missing", problems)
	}
}

// A config that does not parse is a problem naming the file and the line.
func TestGrubBadConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{"menuentry 'x' {\n linux /k\n", "/dev/sda1:/boot/grub/grub.cfg: menuentry: line 1: { without }"},
		{"if [ a ]; then\n set x=1\n", "/dev/sda1:/boot/grub/grub.cfg: line 1: if without fi"},
		{"set x='unterminated\n", "/dev/sda1:/boot/grub/grub.cfg: line 1: unterminated single quote"},
		{"echo \"a\n\nb\n", "/dev/sda1:/boot/grub/grub.cfg: line 1: unterminated double quote"},
		{"fi\n", "/dev/sda1:/boot/grub/grub.cfg: line 1: fi without its opening keyword"},
		{"}\n", "/dev/sda1:/boot/grub/grub.cfg: line 1: } without {"},
		{"configfile /boot/grub/other.cfg\n", "/dev/sda1:/boot/grub/grub.cfg: configfile: /dev/sda1:/boot/grub/other.cfg: no such file or directory"},
		{"source /boot/grub/grub.cfg\n", "/dev/sda1:/boot/grub/grub.cfg: source: /dev/sda1:/boot/grub/grub.cfg: configs nested more than 16 deep"},
		{"function f { f; f; f; f }\nf\n", "/dev/sda1:/boot/grub/grub.cfg: stopped after 100000 statements"},
	} {
		entries, problems := Scan([]*FS{mkfs(t, "/dev/sda1", "", map[string]string{"boot/grub/grub.cfg": tc.cfg})})
		if len(entries) != 0 {
			t.Errorf("%q: entries %+v; want none", tc.cfg, summarize(entries))
		}
		if len(problems) == 0 || !strings.HasPrefix(problems[0].Error(), tc.want) {
			t.Errorf("%q: problems = %v; want one starting %q", tc.cfg, problems, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	entries := []Entry{{Name: "A", ID: "a-id"}, {Name: "B"}, {Name: "C"}}
	for _, tc := range []struct {
		sel     string
		want    []string
		wantErr string
	}{
		{"", []string{"A", "B", "C"}, ""},
		{"1", []string{"B"}, ""},
		{"C", []string{"C"}, ""},
		{"a-id", []string{"A"}, ""},
		{"3", nil, "entry 3: there are 3 entries (0 to 2)"},
		{"-1", nil, "entry -1: there are 3 entries (0 to 2)"},
		{"D", nil, `no entry named "D"; the entries are "A", "B", "C"`},
	} {
		got, err := Select(entries, tc.sel)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Select(%q) = %v; want error %q", tc.sel, err, tc.wantErr)
			}
			continue
		}
		var names []string
		for _, i := range got {
			names = append(names, entries[i].Name)
		}
		if strings.Join(names, ",") != strings.Join(tc.want, ",") || err != nil {
			t.Errorf("Select(%q) = %v, %v; want %v", tc.sel, names, err, tc.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"6.1.0-18-amd64", "6.1.0-9-amd64", 1},
		{"6.10", "6.9", 1},
		{"6.1", "6.1", 0},
		{"6.1.0", "6.1", 1},
		{"6.01", "6.1", 0},
		{"0-rescue-abc", "6.5.6", -1},
		{"6.1.0-rc1", "6.1.0-1", -1},
		{"linux", "linux-lts", -1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("compareVersions(%q, %q) = %d; want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

// GRUB's words: quotes, escapes, variables and the splitting of unquoted
// ones.
func TestGrubWords(t *testing.T) {
	env := map[string]string{"a": "one", "two": "x y", "empty": "", "root": "hd0,gpt1"}
	get := func(k string) string { return env[k] }
	for _, tc := range []struct {
		src  string
		want []string
	}{
		{`linux /vmlinuz root=/dev/sda1 ro`, []string{"linux", "/vmlinuz", "root=/dev/sda1", "ro"}},
		{`echo 'single $a' "double $a" bare$a`, []string{"echo", "single $a", "double one", "bareone"}},
		{`echo ${a}x $two "$two" $empty "$empty"`, []string{"echo", "onex", "x", "y", "x y", ""}},
		{`echo a\ b \$a "q\"q" 'it''s'`, []string{"echo", "a b", "$a", `q"q`, "its"}},
		{"echo one \\\n two # comment", []string{"echo", "one", "two"}},
		{`echo ($root)/boot a#b`, []string{"echo", "(hd0,gpt1)/boot", "a#b"}},
		{`echo $ $1 ${`, []string{"echo", "$", "${"}},
	} {
		toks, err := lexGrub(tc.src)
		if err != nil {
			t.Errorf("lexGrub(%q): %v", tc.src, err)
			continue
		}
		var got []string
		for _, tk := range toks {
			if tk.kind == tWord {
				got = append(got, tk.w.expand(get)...)
			}
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("words of %q = %q; want %q", tc.src, got, tc.want)
		}
	}
}

// GRUB's test command.
func TestGrubTest(t *testing.T) {
	root := mkfs(t, "/dev/sda1", "", map[string]string{"boot/grub/grubenv": "x", "empty": ""})
	vm := &grubVM{s: &scanner{fss: []*FS{root}}, fs: root, env: map[string]string{"root": "/dev/sda1"}, steps: new(int)}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"x"}, true},
		{[]string{""}, false},
		{[]string{"-n", ""}, false},
		{[]string{"-z", ""}, true},
		{[]string{"xy", "=", "xy"}, true},
		{[]string{"xy", "!=", "xy"}, false},
		{[]string{"!", "xy", "=", "xy"}, false},
		{[]string{"10", "-gt", "9"}, true},
		{[]string{"a", "-gt", "9"}, false},
		{[]string{"-s", "/boot/grub/grubenv"}, true},
		{[]string{"-s", "/empty"}, false},
		{[]string{"-f", "/empty"}, true},
		{[]string{"-d", "/boot"}, true},
		{[]string{"-e", "/missing"}, false},
		{[]string{"-z", "", "-a", "-f", "/missing"}, false},
		{[]string{"-z", "x", "-o", "-f", "/empty"}, true},
	} {
		if got := vm.test(tc.args); got != tc.want {
			t.Errorf("test %q = %v; want %v", tc.args, got, tc.want)
		}
	}
}

// No input makes the GRUB reader panic or loop: it ends in statements or
// an error.
func FuzzParseGrub(f *testing.F) {
	f.Add(readTestdata(&testing.T{}, "debian12-grub.cfg"))
	f.Add("menuentry 'x' { linux /k a b; initrd /i }\nif [ a ]; then b; elif c; then d; else e; fi\nfor x in a b; do echo; done\nfunction f { g }\n")
	f.Add(`set a="b\"c" 'd' ${e} $ \`)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		stmts, err := parseGrub(src)
		if err != nil {
			return
		}
		fsys := &FS{Dev: "/dev/x", Dir: dir, Disk: -1}
		vm := &grubVM{s: &scanner{fss: []*FS{fsys}, blsDone: map[*FS]bool{}}, fs: fsys, env: map[string]string{}, funcs: map[string][]stmt{}, menu: &grubMenu{}, load: &grubLoad{}, steps: new(int)}
		vm.run(stmts)
	})
}

// updateGrubUUID is the root filesystem's UUID in
// testdata/debian12-update-grub.cfg.
const updateGrubUUID = "3f1b9a4e-27c1-4bd8-9d5e-0c2a4f7e6a11"

// updateGrubFS is a Debian 12 root whose grub.cfg is what Debian's
// update-grub (grub-mkconfig 2.06-13+deb12u2, its own /etc/grub.d and
// /etc/default/grub) wrote for one kernel, 6.1.0-28-amd64, on /dev/vda1:
// the top entry, and a submenu holding the same boot and recovery mode.
// It was made by running grub-mkconfig in a chroot of a loop-mounted ext4
// filesystem with that kernel and initrd in /boot, with grub-probe
// answering for /dev/vda1 on an msdos disk (its search hints).
func updateGrubFS(t *testing.T) *FS {
	f := mkfs(t, "/dev/vda1", updateGrubUUID, map[string]string{
		"boot/grub/grub.cfg":             readTestdata(t, "debian12-update-grub.cfg"),
		"boot/vmlinuz-6.1.0-28-amd64":    "kernel",
		"boot/initrd.img-6.1.0-28-amd64": "initrd",
	})
	f.Disk, f.Part = 0, 1
	return f
}

// Every entry update-grub wrote is listed, the submenu's twin of the top
// entry too; each is selectable by its number, title, id and GRUB menu
// path (as GRUB_DEFAULT takes them: indices, titles, ids, mixed), and each
// boots with BOOT_IMAGE= the kernel as the linux line names it first.
func TestGrubUpdateGrubEntries(t *testing.T) {
	entries, problems := Scan([]*FS{updateGrubFS(t)})
	noProblems(t, problems)
	const (
		u         = updateGrubUUID
		kernel    = "/dev/vda1:/boot/vmlinuz-6.1.0-28-amd64"
		initrd    = "/dev/vda1:/boot/initrd.img-6.1.0-28-amd64"
		top       = "Debian GNU/Linux"
		advanced  = "Debian GNU/Linux, with Linux 6.1.0-28-amd64"
		recovery  = "Debian GNU/Linux, with Linux 6.1.0-28-amd64 (recovery mode)"
		submenu   = "Advanced options for Debian GNU/Linux"
		normalCmd = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=UUID=" + u + " ro quiet"
	)
	checkEntries(t, "update-grub", entries, []summary{
		{top, kernel, initrd, normalCmd, true},
		{advanced, kernel, initrd, normalCmd, false},
		{recovery, kernel, initrd, "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=UUID=" + u + " ro single", false},
	})
	if len(entries) != 3 {
		return
	}
	for i, want := range []string{"gnulinux-simple-" + u, "gnulinux-6.1.0-28-amd64-advanced-" + u, "gnulinux-6.1.0-28-amd64-recovery-" + u} {
		if got := entries[i].ID; got != want {
			t.Errorf("entry %d's ID = %q; want %q", i, got, want)
		}
	}
	for i, want := range []string{"0", "1>0", "1>1"} {
		if got := entries[i].MenuPath(); got != want {
			t.Errorf("entry %d's MenuPath() = %q; want %q", i, got, want)
		}
	}
	// The twin is folded onto the top entry for display, not dropped.
	if got, want := fmt.Sprint(SameBoot(entries)), "[0 0 2]"; got != want {
		t.Errorf("SameBoot = %s; want %s", got, want)
	}
	for _, tc := range []struct{ sel, want string }{
		{"0", top},
		{"1", advanced},
		{"2", recovery},
		{top, top},
		{advanced, advanced},
		{recovery, recovery},
		{"gnulinux-simple-" + u, top},
		{"gnulinux-6.1.0-28-amd64-advanced-" + u, advanced},
		{"gnulinux-6.1.0-28-amd64-recovery-" + u, recovery},
		{"1>0", advanced},
		{"1>1", recovery},
		{"gnulinux-advanced-" + u + ">gnulinux-6.1.0-28-amd64-advanced-" + u, advanced},
		{"gnulinux-advanced-" + u + ">gnulinux-6.1.0-28-amd64-recovery-" + u, recovery},
		{submenu + ">" + advanced, advanced},
		{submenu + ">" + recovery, recovery},
		{"1>" + recovery, recovery},
		{submenu + ">0", advanced},
	} {
		got, err := Select(entries, tc.sel)
		if err != nil || len(got) != 1 {
			t.Errorf("Select(%q) = %v, %v; want %q", tc.sel, got, err, tc.want)
			continue
		}
		e := entries[got[0]]
		if e.Name != tc.want {
			t.Errorf("Select(%q) = %q; want %q", tc.sel, e.Name, tc.want)
		}
		if !strings.HasPrefix(e.Cmdline, "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=") {
			t.Errorf("Select(%q): command line %q; want it to start with BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 and root=", tc.sel, e.Cmdline)
		}
	}
	for _, sel := range []string{"1>2", "2>0", "0>0", submenu + ">nothing", "gnulinux-advanced-" + u} {
		if got, err := Select(entries, sel); err == nil {
			t.Errorf("Select(%q) = %v; want an error", sel, got)
		}
	}
}

// GRUB's default given as a path into update-grub's submenu puts that
// entry first, and the rest keep their places.
func TestGrubUpdateGrubDefault(t *testing.T) {
	f := updateGrubFS(t)
	env := "# GRUB Environment Block\nnext_entry=gnulinux-advanced-" + updateGrubUUID + ">gnulinux-6.1.0-28-amd64-recovery-" + updateGrubUUID + "\n"
	if err := os.WriteFile(filepath.Join(f.Dir, "boot/grub/grubenv"), []byte(env+strings.Repeat("#", 1024-len(env))), 0o644); err != nil {
		t.Fatal(err)
	}
	entries, problems := Scan([]*FS{f})
	noProblems(t, problems)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	want := "Debian GNU/Linux, with Linux 6.1.0-28-amd64 (recovery mode)|Debian GNU/Linux|Debian GNU/Linux, with Linux 6.1.0-28-amd64"
	if got := strings.Join(names, "|"); got != want {
		t.Errorf("entries = %s; want %s", got, want)
	}
	if len(entries) > 0 && !entries[0].Default {
		t.Errorf("first entry is not the default")
	}
}
