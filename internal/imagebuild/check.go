package imagebuild

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/u-root/mkuimage/cpio"
)

// ErrNotGoOnly is wrapped by every finding of CheckGoOnly.
var ErrNotGoOnly = errors.New("image is not Go-only")

// busyboxBanner is the start of the banner of every busybox build
// ("BusyBox v1.36.1 (...) multi-call binary."), kept reversed so that a
// binary holding this package (mkimage, its tests) does not carry it.
var busyboxBanner = reverse("v xoBysuB")

func reverse(s string) []byte {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return b
}

// hasBusyboxBanner reports whether data holds the banner followed by a
// version digit.
func hasBusyboxBanner(data []byte) bool {
	for {
		i := bytes.Index(data, busyboxBanner)
		if i < 0 {
			return false
		}
		data = data[i+len(busyboxBanner):]
		if len(data) > 0 && data[0] >= '0' && data[0] <= '9' {
			return true
		}
	}
}

// CheckGoOnly checks that the image is busybox-free and that every program
// in it is a Go binary:
//   - a regular file with any execute bit must be a Go ELF executable
//     (debug/buildinfo can read it); scripts and C programs fail;
//   - an ELF executable or shared object without execute bits must be Go
//     too (kernel modules, ELF relocatable files, are fine);
//   - no entry may be called busybox, and no file may carry busybox's
//     banner.
//
// It reports every offending entry, each named, joined into one error.
func CheckGoOnly(recs []cpio.Record) error {
	var errs []error
	for _, r := range recs {
		if err := checkRecord(r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", "/"+r.Name, err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrNotGoOnly, errors.Join(errs...))
}

func checkRecord(r cpio.Record) error {
	if strings.EqualFold(path.Base(r.Name), "busybox") {
		return errors.New("entry named busybox")
	}
	if r.Mode&cpio.S_IFMT != cpio.S_IFREG {
		return nil
	}
	data, err := contents(r)
	if err != nil {
		return err
	}
	if hasBusyboxBanner(data) {
		return errors.New("file carries the busybox banner")
	}
	exec := r.Mode&0o111 != 0
	isELF := bytes.HasPrefix(data, []byte(elf.ELFMAG))
	if !isELF {
		if exec {
			what := "not an ELF file"
			if bytes.HasPrefix(data, []byte("#!")) {
				line, _, _ := bytes.Cut(data, []byte("\n"))
				what = fmt.Sprintf("a script (%s)", strings.TrimSpace(string(line)))
			}
			return fmt.Errorf("executable is not a Go binary: %s", what)
		}
		return nil
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		if exec {
			return fmt.Errorf("executable is not a Go binary: bad ELF: %w", err)
		}
		return nil
	}
	typ := f.Type
	if !exec && typ != elf.ET_EXEC && typ != elf.ET_DYN {
		return nil // kernel modules and other object files
	}
	if _, err := buildinfo.Read(bytes.NewReader(data)); err != nil {
		kind := "executable"
		if interp := f.Section(".interp"); interp != nil {
			if b, err := interp.Data(); err == nil {
				kind = fmt.Sprintf("dynamically linked executable (%s)", strings.TrimRight(string(b), "\x00"))
			}
		} else if typ == elf.ET_DYN {
			kind = "shared object or executable"
		}
		return fmt.Errorf("%s is not a Go binary: %w", kind, err)
	}
	return nil
}
