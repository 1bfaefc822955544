package osfind

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// maxCmdline is the longest command line x86's kernel takes
// (COMMAND_LINE_SIZE, with its terminating NUL).
const maxCmdline = 2047

// JoinCmdline appends extra to an entry's command line.
func JoinCmdline(cmdline, extra string) string {
	return strings.TrimSpace(strings.TrimSpace(cmdline) + " " + strings.TrimSpace(extra))
}

// Load loads e's kernel and initrds with kexec_file_load(2), with e's
// command line and extra after it: the machine boots it at the next
// reboot(LINUX_REBOOT_CMD_KEXEC). Several initrds are joined into one in
// a temporary file first, as the kernel takes one.
func Load(e Entry, extra string) error {
	cmdline := JoinCmdline(e.Cmdline, extra)
	if len(cmdline) > maxCmdline {
		return fmt.Errorf("command line of %s is %d bytes; the kernel takes %d", e.Kernel, len(cmdline), maxCmdline)
	}
	kernel, err := e.Kernel.Open()
	if err != nil {
		return err
	}
	defer kernel.Close()
	initrdFd, flags := -1, 0
	switch len(e.Initrds) {
	case 0:
		flags |= unix.KEXEC_FILE_NO_INITRAMFS
	case 1:
		f, err := e.Initrds[0].Open()
		if err != nil {
			return err
		}
		defer f.Close()
		initrdFd = int(f.Fd())
	default:
		f, err := joinInitrds(e.Initrds)
		if err != nil {
			return err
		}
		defer f.Close()
		initrdFd = int(f.Fd())
	}
	if err := unix.KexecFileLoad(int(kernel.Fd()), initrdFd, cmdline, flags); err != nil {
		return fmt.Errorf("kexec_file_load %s: %w", e.Kernel, explainKexec(err))
	}
	return nil
}

// joinInitrds writes the initrds one after the other to a temporary file
// (the kernel unpacks concatenated archives) and returns it opened
// read-only, as kexec_file_load wants: no writer may hold it open.
func joinInitrds(files []File) (*os.File, error) {
	tmp, err := os.CreateTemp("", "osboot-initrd-")
	if err != nil {
		return nil, fmt.Errorf("join initrds: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name) // the open file stays readable
	for _, f := range files {
		in, err := f.Open()
		if err != nil {
			tmp.Close()
			return nil, err
		}
		_, err = io.Copy(tmp, in)
		in.Close()
		if err != nil {
			tmp.Close()
			return nil, fmt.Errorf("join initrds: copy %s to %s: %w", f, name, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("join initrds: %s: %w", name, err)
	}
	ro, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("join initrds: %w", err)
	}
	return ro, nil
}

// kexecHint says what a kexec_file_load error usually means.
type kexecHint struct {
	err  error
	hint string
}

func (k kexecHint) Error() string { return k.err.Error() + " (" + k.hint + ")" }
func (k kexecHint) Unwrap() error { return k.err }

func explainKexec(err error) error {
	switch {
	case errors.Is(err, unix.ENOSYS):
		return kexecHint{err, "this kernel was built without CONFIG_KEXEC_FILE"}
	case errors.Is(err, unix.EPERM):
		return kexecHint{err, "kexec needs CAP_SYS_BOOT, and a kernel that is not locked down or has kexec_load_disabled unset"}
	case errors.Is(err, unix.ENOEXEC):
		return kexecHint{err, "not a kernel image this kernel can load (x86 wants a bzImage)"}
	case errors.Is(err, unix.EKEYREJECTED), errors.Is(err, unix.EBADMSG), errors.Is(err, unix.ENOKEY):
		return kexecHint{err, "the kernel's signature was rejected"}
	case errors.Is(err, unix.EBUSY):
		return kexecHint{err, "another kernel is loaded or being loaded"}
	case errors.Is(err, unix.ETXTBSY):
		return kexecHint{err, "a file is open for writing"}
	}
	return err
}
