package initsys

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDetect(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	outside := filepath.Join(top, "outside")
	elf := "\x7fELF\x02\x01\x01\x00"
	files := map[string]string{
		"usr/lib/systemd/systemd": elf,
		"usr/bin/busybox":         elf,
		"usr/bin/nginx":           elf,
		"usr/bin/tini":            elf,
		"usr/bin/dumb-init":       elf,
		"usr/bin/catatonit":       elf,
		"usr/bin/s6-svscan":       elf,
		"opt/tini-0.19":           elf,
		"sysv/sbin/init":          elf,
		"s6-overlay/init":         "#!/bin/sh -e\nexec /package/admin/s6-overlay/libexec/preinit\n",
		"void/sbin/runit-init":    elf,
		"gentoo/sbin/openrc-init": elf,
	}
	links := map[string]string{
		"lib":                      "usr/lib",                            // merged /usr, relative
		"bin":                      "usr/bin",                            //
		"sbin/init":                "/lib/systemd/systemd",               // Debian: absolute, through lib -> usr/lib
		"rel/sbin/init":            "../../lib/systemd/systemd",          // relative
		"etc/alternatives/init":    "/usr/lib/systemd/systemd",           //
		"chain/sbin/init":          "/etc/alternatives/init",             // a chain of links
		"alpine/sbin/init":         "/bin/busybox",                       // busybox's applet
		"alpine/bin/sh":            "/bin/busybox",                       // another applet
		"void/sbin/init":           "runit-init",                         //
		"gentoo/sbin/init":         "openrc-init",                        //
		"usr/local/bin/tini":       "/opt/tini-0.19",                     // an unknown file, an init's name
		"esc/sbin/init":            "../../../outside/init",              // .. stops at the root
		"esc/abs/init":             filepath.Join(outside, "init"),       // the host's path means nothing inside
		"esc2/sbin/init":           "../../../../../lib/systemd/systemd", // escaping, yet inside the root
		"loop/init":                "/loop/init",                         //
		"unknown/sbin/init":        "/usr/bin/nginx",                     // not an init by its file, but by its name
		"unknown/sbin/not-an-init": "/usr/bin/nginx",                     //
	}
	for f, data := range files {
		write(t, filepath.Join(root, f), data)
	}
	for l, target := range links {
		symlink(t, target, filepath.Join(root, l))
	}
	// Outside the root, a chain a resolver that escapes would follow to systemd.
	write(t, filepath.Join(outside, "systemd"), elf)
	symlink(t, "systemd", filepath.Join(outside, "init"))

	systemd := Init{true, "systemd", 34 + 3}
	other := Init{true, "init", unix.SIGTERM}
	none := Init{false, "", unix.SIGTERM}
	for _, tt := range []struct {
		argv0 string
		want  Init
	}{
		{"/sbin/init", systemd},
		{"/lib/systemd/systemd", systemd},
		{"/rel/sbin/init", systemd},
		{"/chain/sbin/init", systemd},
		{"/esc2/sbin/init", systemd},
		{"systemd", systemd},
		{"/alpine/sbin/init", Init{true, "busybox", unix.SIGUSR2}},
		{"/alpine/bin/sh", none},
		{"/sysv/sbin/init", Init{true, "sysvinit", unix.SIGPWR}},
		{"/s6-overlay/init", other},
		{"/void/sbin/init", Init{true, "runit", unix.SIGCONT}},
		{"/gentoo/sbin/init", Init{true, "openrc", unix.SIGTERM}},
		{"/usr/bin/s6-svscan", Init{true, "s6", unix.SIGTERM}},
		{"/bin/tini", Init{true, "tini", unix.SIGTERM}},
		{"/usr/local/bin/tini", Init{true, "tini", unix.SIGTERM}},
		{"/bin/dumb-init", Init{true, "dumb-init", unix.SIGTERM}},
		{"/bin/catatonit", Init{true, "catatonit", unix.SIGTERM}},
		{"/esc/sbin/init", other},
		{"/esc/abs/init", other},
		{"/loop/init", other},
		{"/missing/sbin/init", other},
		{"/unknown/sbin/init", other},
		{"/unknown/sbin/not-an-init", none},
		{"/usr/bin/nginx", none},
		{"nginx", none},
	} {
		if got := Detect(root, tt.argv0); got != tt.want {
			t.Errorf("Detect(root, %q) = %+v; want %+v", tt.argv0, got, tt.want)
		}
	}
}

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}
