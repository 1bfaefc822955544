package mounts

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// optionFlags are the mount(8) option words that are mount(2) flags: set
// or, for their opposites, cleared.
var optionFlags = []struct {
	word  string
	flag  uintptr
	clear bool
}{
	{"ro", unix.MS_RDONLY, false}, {"rw", unix.MS_RDONLY, true},
	{"noexec", unix.MS_NOEXEC, false}, {"exec", unix.MS_NOEXEC, true},
	{"nosuid", unix.MS_NOSUID, false}, {"suid", unix.MS_NOSUID, true},
	{"nodev", unix.MS_NODEV, false}, {"dev", unix.MS_NODEV, true},
	{"noatime", unix.MS_NOATIME, false}, {"atime", unix.MS_NOATIME, true},
	{"nodiratime", unix.MS_NODIRATIME, false}, {"diratime", unix.MS_NODIRATIME, true},
	{"relatime", unix.MS_RELATIME, false}, {"norelatime", unix.MS_RELATIME, true},
	{"strictatime", unix.MS_STRICTATIME, false},
	{"sync", unix.MS_SYNCHRONOUS, false}, {"async", unix.MS_SYNCHRONOUS, true},
}

// tmpfsKeys are the KEY=VALUE options tmpfs takes (tmpfs(5)).
var tmpfsKeys = []string{"size", "nr_blocks", "nr_inodes", "mode", "uid", "gid", "huge", "mpol"}

// TmpfsDefaults are docker run --tmpfs's flags before its options apply.
const TmpfsDefaults = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV

// ParseTmpfsOptions applies mount options as docker run --tmpfs and
// mount(8) write them ("ro,exec,size=64m,mode=1770") to flags and returns
// the flags and the data string tmpfs reads. A word that is neither a
// flag nor one of tmpfs's KEY=VALUE options is an error naming it.
func ParseTmpfsOptions(opts string, flags uintptr) (uintptr, string, error) {
	var data []string
	for _, w := range strings.Split(opts, ",") {
		if w == "" {
			continue
		}
		if key, _, ok := strings.Cut(w, "="); ok {
			if !slices.Contains(tmpfsKeys, key) {
				return 0, "", fmt.Errorf("tmpfs option %q: want one of %s=VALUE", key, strings.Join(tmpfsKeys, "=, "))
			}
			data = append(data, w)
			continue
		}
		known := false
		for _, f := range optionFlags {
			if f.word == w {
				known = true
				if f.clear {
					flags &^= f.flag
				} else {
					flags |= f.flag
				}
			}
		}
		if !known {
			return 0, "", fmt.Errorf("tmpfs option %q: unknown", w)
		}
	}
	return flags, strings.Join(data, ","), nil
}
