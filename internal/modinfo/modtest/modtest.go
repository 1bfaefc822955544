// Package modtest makes small ELF files for tests: kernel modules with a
// .modinfo section, and ELF executables that are not Go binaries.
package modtest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"strings"
)

// Section is one ELF section: its name and contents.
type Section struct {
	Name string
	Data []byte
}

// ELF returns a minimal little-endian x86-64 ELF64 file of type typ holding
// the given sections (plus the null section and .shstrtab).
func ELF(typ elf.Type, sections ...Section) []byte {
	var shstr bytes.Buffer
	shstr.WriteByte(0)
	nameOff := func(n string) uint32 {
		off := uint32(shstr.Len())
		shstr.WriteString(n)
		shstr.WriteByte(0)
		return off
	}
	type sec struct {
		hdr  elf.Section64
		data []byte
	}
	secs := []sec{{}} // SHN_UNDEF
	for _, s := range sections {
		secs = append(secs, sec{hdr: elf.Section64{
			Name: nameOff(s.Name), Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Addralign: 1,
		}, data: s.Data})
	}
	secs = append(secs, sec{hdr: elf.Section64{Name: nameOff(".shstrtab"), Type: uint32(elf.SHT_STRTAB), Addralign: 1}})
	secs[len(secs)-1].data = shstr.Bytes()

	const ehsize = 64
	off := uint64(ehsize)
	for i := range secs[1:] {
		s := &secs[i+1]
		s.hdr.Off = off
		s.hdr.Size = uint64(len(s.data))
		off += s.hdr.Size
	}
	shoff := (off + 7) &^ 7

	var b bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(typ), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shoff, Ehsize: ehsize, Shentsize: 64,
		Shnum: uint16(len(secs)), Shstrndx: uint16(len(secs) - 1),
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, hdr)
	for _, s := range secs[1:] {
		b.Write(s.data)
	}
	for uint64(b.Len()) < shoff {
		b.WriteByte(0)
	}
	for _, s := range secs {
		binary.Write(&b, binary.LittleEndian, s.hdr)
	}
	return b.Bytes()
}

// Modinfo returns the bytes of a .modinfo section holding fields
// ("key=value"), NUL-terminated, as the kernel's build writes them.
func Modinfo(fields ...string) []byte {
	if len(fields) == 0 {
		return nil
	}
	return []byte(strings.Join(fields, "\x00") + "\x00")
}

// Module returns an ELF relocatable object, as a .ko file is, whose
// .modinfo section holds fields ("key=value").
func Module(fields ...string) []byte {
	return ELF(elf.ET_REL,
		Section{".text", []byte{0xc3}},
		Section{".modinfo", Modinfo(fields...)},
	)
}
