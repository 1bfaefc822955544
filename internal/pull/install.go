package pull

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ginit-dev/ginit/internal/imagespec"
	"github.com/ginit-dev/ginit/internal/mkext4"
)

// Install formats device as an ext4 root disk labelled as oci2disk labels
// its disks, pulls the image onto it, and unmounts and syncs it. The image
// is found before the disk is touched, so a wrong reference or an absent
// registry loses nothing; and until the pull has finished the disk holds no
// label, so a failed install never looks like a bootable root.
func Install(ctx context.Context, source, device string, o Options) (*Report, error) {
	im, o, err := open(ctx, source, o)
	if err != nil {
		return nil, fmt.Errorf("install %s onto %s: %w", source, device, err)
	}
	defer im.Close()
	// Format without the label: it goes on once the content is complete.
	if err := mkext4.Format(device, mkext4.Options{}); err != nil {
		return nil, fmt.Errorf("install %s: %w", device, err)
	}
	mnt, err := os.MkdirTemp("", "ocipull-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(device, mnt, "ext4", unix.MS_NOATIME, ""); err != nil {
		return nil, fmt.Errorf("install: mount %s on %s: %w", device, mnt, err)
	}
	rep, err := into(ctx, im, source, mnt, o)
	if err == nil {
		err = setLabel(mnt, imagespec.RootLabel)
	}
	unix.Sync()
	if uerr := unix.Unmount(mnt, 0); uerr != nil && err == nil {
		err = fmt.Errorf("install: unmount %s: %w", mnt, uerr)
	}
	if err != nil {
		return nil, fmt.Errorf("install %s onto %s: %w", source, device, err)
	}
	if f, err := os.OpenFile(device, os.O_RDWR, 0); err == nil {
		err = f.Sync()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("install: sync %s: %w", device, err)
		}
	}
	return rep, nil
}

// fsIocSetFSLabel is FS_IOC_SETFSLABEL, _IOW(0x94, 50, char[256]), which
// x/sys does not name.
const fsIocSetFSLabel = 0x41009432

// setLabel sets a mounted ext4's label with FS_IOC_SETFSLABEL.
func setLabel(mnt, label string) error {
	f, err := os.Open(mnt)
	if err != nil {
		return err
	}
	defer f.Close()
	var buf [256]byte // FSLABEL_MAX
	copy(buf[:], label)
	if err := unix.IoctlSetString(int(f.Fd()), fsIocSetFSLabel, string(buf[:])); err != nil {
		return fmt.Errorf("set label %q on %s: %w", label, mnt, err)
	}
	return nil
}
