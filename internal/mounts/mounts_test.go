package mounts

import (
	"reflect"
	"testing"

	"github.com/ginit-dev/ginit/internal/imagespec"
)

const mountinfo = `22 1 0:21 / / rw - rootfs rootfs rw
23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw
30 22 254:0 / /newroot rw,relatime - ext4 /dev/vda rw
31 30 0:5 / /newroot/dev rw,nosuid - devtmpfs devtmpfs rw
32 31 0:24 / /newroot/dev/pts rw - devpts devpts rw
33 30 0:22 / /newroot/proc rw - proc proc rw
34 30 0:26 / /newroot/my\040dir rw - tmpfs tmpfs rw
35 22 0:27 / /newrootx rw - tmpfs tmpfs rw
`

func TestUnmountOrder(t *testing.T) {
	got := UnmountOrder(MountPoints(mountinfo), "/newroot")
	want := []string{"/newroot/my dir", "/newroot/proc", "/newroot/dev/pts", "/newroot/dev", "/newroot"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("UnmountOrder = %q; want %q", got, want)
	}
}

func TestIntoRootTargets(t *testing.T) {
	var got []string
	for _, m := range IntoRoot("/newroot") {
		got = append(got, m.Target)
	}
	want := []string{"/newroot/dev", "/newroot/proc", "/newroot/sys", "/newroot/run", "/newroot/tmp"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IntoRoot targets = %q; want %q", got, want)
	}
}

// A disk made from an image has each of IntoRoot's mount points, so that
// mounting them makes nothing on it: they are in imagespec.MountDirs,
// with the mode IntoRoot would make them with.
func TestIntoRootTargetsOnDisk(t *testing.T) {
	perms := map[string]uint32{}
	for _, d := range imagespec.MountDirs {
		perms["/newroot/"+d.Name] = d.Perm
	}
	for _, m := range IntoRoot("/newroot") {
		perm, ok := perms[m.Target]
		if !ok {
			t.Errorf("IntoRoot's %s is not in imagespec.MountDirs: a disk would lack it", m.Target)
			continue
		}
		if m.Mode != 0 && uint32(m.Mode.Perm()) != perm&0o777 {
			t.Errorf("%s: IntoRoot makes it %v; imagespec.MountDirs %#o", m.Target, m.Mode, perm)
		}
	}
}
