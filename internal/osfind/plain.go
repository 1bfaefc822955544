package osfind

import (
	"os"
	"path"
	"sort"
	"strings"
)

// initrdNames are the initrd names distributions give the kernel VERSION's
// initrd, in the order they are tried: Debian and Ubuntu, Fedora and Arch,
// SUSE.
var initrdNames = []string{"initrd.img-%s", "initramfs-%s.img", "initrd-%s", "initrd-%s.img", "initramfs-%s"}

// plainEntries returns the kernels of fsys's /boot (vmlinuz-VERSION), newest
// first, each with its initrd when there is one, and the command line
// /etc/kernel/cmdline gives, or root= this filesystem, read-only.
func plainEntries(fsys *FS) []Entry {
	dir := on(fsys, "/boot")
	host, err := dir.HostPath()
	if err != nil {
		return nil
	}
	names, err := readDirNames(host)
	if err != nil {
		return nil
	}
	var versions []string
	for _, n := range names {
		v, ok := strings.CutPrefix(n, "vmlinuz-")
		if !ok || v == "" || strings.HasSuffix(v, ".old") || strings.HasSuffix(v, ".bak") || strings.HasSuffix(v, ".sig") {
			continue
		}
		if on(fsys, path.Join("/boot", n)).exists() {
			versions = append(versions, v)
		}
	}
	sort.SliceStable(versions, func(i, j int) bool { return compareVersions(versions[i], versions[j]) > 0 })
	cmdline := plainCmdline(fsys)
	var out []Entry
	for _, v := range versions {
		e := Entry{
			Name:    "Linux " + v,
			ID:      v,
			Kind:    Plain,
			Source:  dir,
			Kernel:  on(fsys, "/boot/vmlinuz-"+v),
			Cmdline: cmdline,
		}
		for _, pattern := range initrdNames {
			if f := on(fsys, "/boot/"+strings.Replace(pattern, "%s", v, 1)); f.exists() {
				e.Initrds = []File{f}
				break
			}
		}
		out = append(out, e)
	}
	return out
}

// plainCmdline is the command line for a plain /boot's kernels: the
// filesystem's /etc/kernel/cmdline (as systemd's kernel-install reads it),
// else root= the filesystem itself, read-only, as an installer would write.
func plainCmdline(fsys *FS) string {
	if b, err := on(fsys, "/etc/kernel/cmdline").ReadFile(); err == nil {
		var words []string
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "#") {
				words = append(words, strings.Fields(line)...)
			}
		}
		if len(words) > 0 {
			return strings.Join(words, " ")
		}
	}
	if fsys.UUID != "" {
		return "root=UUID=" + fsys.UUID + " ro"
	}
	return "root=" + fsys.Dev + " ro"
}

func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}
