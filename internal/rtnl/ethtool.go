package rtnl

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SyncCarrier asks the driver for the link's carrier (ETHTOOL_GLINK),
// which on kernels that sync the link watcher there (6.18 does, 6.1 does
// not) applies a pending carrier change at once instead of when the
// watcher next runs, up to a second later. Until then the
// kernel does not take the link as operational: IPv6 gives it no
// link-local address and no multicast route. It returns the carrier.
func SyncCarrier(name string) (bool, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("ethtool socket: %w", err)
	}
	defer unix.Close(fd)
	val := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_GLINK}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(ifr.name[:unix.IFNAMSIZ-1], name)
	ifr.data = uintptr(unsafe.Pointer(&val))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&val)
	if errno != 0 {
		return false, fmt.Errorf("ethtool get link %s: %w", name, errno)
	}
	return val.data != 0, nil
}
