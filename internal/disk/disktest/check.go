package disktest

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/ginit-dev/ginit/internal/ext4img"
	"github.com/ginit-dev/ginit/internal/testenv"
)

// NeedTools needs e2fsprogs (and more tools when named).
func NeedTools(t testing.TB, more ...string) {
	t.Helper()
	for _, tool := range append([]string{"mkfs.ext4", "debugfs", "e2fsck"}, more...) {
		if _, err := ext4img.Tool(tool); err != nil {
			testenv.Missing(t, "%v", err)
		}
	}
}

// Fsck runs e2fsck -fn on img.
func Fsck(t testing.TB, img string) {
	t.Helper()
	p, err := ext4img.Tool("e2fsck")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(p, "-fn", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

// Stat is debugfs's stat of p in img.
func Stat(t testing.TB, img, p string) string {
	t.Helper()
	b, err := ext4img.Debugfs(context.Background(), img, `stat "`+p+`"`)
	if err != nil {
		t.Errorf("stat %s: %v", p, err)
	}
	return string(b)
}

// Cat reads p from img.
func Cat(t testing.TB, img, p string) string {
	t.Helper()
	b, err := ext4img.ReadFile(context.Background(), img, p)
	if err != nil {
		t.Errorf("reading %s: %v", p, err)
	}
	return string(b)
}

// Absent fails if p exists in img.
func Absent(t testing.TB, img, p string) {
	t.Helper()
	if b, err := ext4img.Debugfs(context.Background(), img, `stat "`+p+`"`); err == nil {
		t.Errorf("%s is in the disk; want it gone:\n%s", p, b)
	}
}

var inodeRe = regexp.MustCompile(`Inode: (\d+)`)

// CheckFeatureDisk checks a disk made from FeatureImage: the file system is
// clean, and every file, owner, mode, device node, link, xattr, whiteout
// and the config document came through. rawConfig is the image's config
// as the registry serves it.
func CheckFeatureDisk(t testing.TB, img string, rawConfig []byte) {
	t.Helper()
	Fsck(t, img)
	for p, want := range map[string]string{
		"/etc/hostname": "changed\n", "/bin/su": "su", "/usr/bin/su2": "su", "/data/across": "shared",
		"/opq/upper": "upper", "/home/user/notes": "mine", "/lib/omitted/parents/file": "deep", "/etc/motd": "after 2106\n",
	} {
		if got := Cat(t, img, p); got != want {
			t.Errorf("%s = %q; want %q", p, got, want)
		}
	}
	if got := Cat(t, img, "/usr/share/big"); len(got) != 1<<20 || !strings.HasPrefix(got, "0123456789abcdef0123") {
		t.Errorf("/usr/share/big: %d bytes; want 1 MiB of the pattern", len(got))
	}
	for p, re := range map[string]string{
		"/etc/shadow":        `Mode:\s+0640\b(.|\n)*User:\s+0\s+Group:\s+42\b`,
		"/usr/bin/su":        `Type: regular\s+Mode:\s+04755\b(.|\n)*Links: 2\b`,
		"/usr/bin/wall":      `Mode:\s+02755\b(.|\n)*Group:\s+5\b`,
		"/tmp":               `Type: directory\s+Mode:\s+01777\b`,
		"/home/user":         `Mode:\s+0700\b(.|\n)*User:\s+1000\s+Group:\s+1000\b`,
		"/dev/null":          `Type: character special\s+Mode:\s+0666\b(.|\n)*Device major/minor number: 01:03`,
		"/dev/sda":           `Type: block special\s+Mode:\s+0660\b(.|\n)*Group:\s+6\b(.|\n)*Device major/minor number: 08:00`,
		"/run":               `Type: directory\s+Mode:\s+0755\b(.|\n)*User:\s+0\s+Group:\s+0\b`,
		"/run/fifo":          `Type: FIFO\s+Mode:\s+0600\b`,
		"/bin":               `Type: symlink(.|\n)*Fast link dest: "usr/bin"`,
		"/data/orig":         `Mode:\s+0600\b(.|\n)*User:\s+33\s+Group:\s+33\b(.|\n)*Links: 3\b`,
		"/etc/hostname":      `mtime: 0x6553f100:00000000`,
		"/etc/motd":          ` mtime: 0x00000005:00000001`,
		"/srv/big-ids":       `User:\s+100000\s+Group:\s+200000\b`,
		"/srv/long-link":     `Type: symlink(.|\n)*Size: 87\b`,
		"/lib/omitted":       `Type: directory\s+Mode:\s+0755\b(.|\n)*User:\s+0\s+Group:\s+0\b`,
		"/.ginit/image.json": `Type: regular\s+Mode:\s+0644\b(.|\n)*User:\s+0\s+Group:\s+0\b`,
		"/opq":               `Type: directory`,
	} {
		s := Stat(t, img, p)
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("stat %s does not match %q:\n%s", p, re, s)
		}
	}
	// Hard links within and across layers share one inode.
	orig := inodeRe.FindStringSubmatch(Stat(t, img, "/data/orig"))
	for _, p := range []string{"/data/same-layer", "/data/across"} {
		if m := inodeRe.FindStringSubmatch(Stat(t, img, p)); orig == nil || m == nil || m[1] != orig[1] {
			t.Errorf("%s is inode %v; want %v, the inode of /data/orig", p, m, orig)
		}
	}
	for _, p := range []string{"/etc/old", "/etc/dir-gone", "/etc/dir-gone/f", "/opq/lower", "/opq/sub", "/opq/sub/lower", "/etc/.wh.old", "/opq/.wh..wh..opq"} {
		Absent(t, img, p)
	}
	b, err := ext4img.Debugfs(context.Background(), img, "ea_list /usr/bin/ping")
	if err != nil || !strings.Contains(string(b), "security.capability (20) = 01 00 00 02 00 20 00 00") || !strings.Contains(string(b), `user.note (6) = "pinger"`) {
		t.Errorf("ea_list /usr/bin/ping = %q, %v; want security.capability and user.note", b, err)
	}
	if got := Cat(t, img, "/.ginit/image.json"); got != string(rawConfig) {
		t.Errorf("/.ginit/image.json differs from the image's config:\n got %s\nwant %s", got, rawConfig)
	}
}
