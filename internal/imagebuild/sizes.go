package imagebuild

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ginit-dev/ginit/internal/modinfo"
	"github.com/u-root/mkuimage/cpio"
)

// sizeItem is one row of the size table.
type sizeItem struct {
	what    string
	raw, xz int64
}

// SizeTable tells what takes the space in an image: the gbb binary (with the
// commands linked to it), each kernel module, and the other entries
// together. Each row is compressed alone, so the rows do not add up to the
// archive's xz size exactly, which the last row gives.
func SizeTable(recs []cpio.Record, mods *Modules, totalXZ, budget int64) (string, error) {
	modByPath := map[string]string{}
	if mods != nil {
		for _, m := range mods.Modules {
			modByPath[path.Join(mods.Dir, m.Path)] = m.Name
		}
	}
	links := map[string][]string{} // bb path -> command names
	for _, r := range recs {
		if r.Mode&cpio.S_IFMT == cpio.S_IFLNK {
			target, err := contents(r)
			if err != nil {
				return "", err
			}
			t := path.Clean(path.Join(path.Dir(r.Name), string(target)))
			links[t] = append(links[t], path.Base(r.Name))
		}
	}

	var items []sizeItem
	var other []byte
	var otherRaw int64
	nOther := 0
	for _, r := range recs {
		if r.Mode&cpio.S_IFMT != cpio.S_IFREG {
			nOther++
			continue
		}
		data, err := contents(r)
		if err != nil {
			return "", err
		}
		var what string
		switch name, ok := modByPath[r.Name]; {
		case ok:
			what = "module " + name
		case isGoBinary(data):
			what = "/" + r.Name
			if l := links[r.Name]; len(l) > 0 {
				sort.Strings(l)
				what += fmt.Sprintf(" (%d commands: %s)", len(l), abbreviate(l, 6))
			}
		default:
			_, isMod := modinfo.NameFromPath(r.Name)
			if isMod {
				what = "/" + r.Name
				break
			}
			other = append(other, data...)
			otherRaw += int64(len(data))
			nOther++
			continue
		}
		xz, err := xzSize(data)
		if err != nil {
			return "", err
		}
		items = append(items, sizeItem{what, int64(len(data)), xz})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].xz > items[j].xz })
	otherXZ, err := xzSize(other)
	if err != nil {
		return "", err
	}
	items = append(items, sizeItem{fmt.Sprintf("%d other entries (files, links, dirs, devices)", nOther), otherRaw, otherXZ})

	total := "whole archive"
	if budget > 0 {
		total = fmt.Sprintf("whole archive (budget %s)", human(budget))
	}
	w := len(total)
	for _, it := range items {
		w = max(w, len(it.what))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s %11s %11s\n", w, "what", "raw", "xz alone")
	for _, it := range items {
		fmt.Fprintf(&b, "%-*s %11s %11s\n", w, it.what, human(it.raw), human(it.xz))
	}
	fmt.Fprintf(&b, "%-*s %11s %11s\n", w, total, "", human(totalXZ))
	return b.String(), nil
}

func isGoBinary(data []byte) bool {
	return checkRecord(cpio.StaticRecord(data, cpio.Info{Name: "x", Mode: cpio.S_IFREG | 0o755})) == nil &&
		strings.HasPrefix(string(data[:min(len(data), 4)]), "\x7fELF")
}

func abbreviate(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, " ")
	}
	return strings.Join(s[:n], " ") + fmt.Sprintf(" +%d", len(s)-n)
}
