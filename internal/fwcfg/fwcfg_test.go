package fwcfg

import (
	"encoding/binary"
	"strings"
	"testing"
)

func entry(size uint32, sel uint16, name string) []byte {
	e := make([]byte, dirEntrySize)
	binary.BigEndian.PutUint32(e, size)
	binary.BigEndian.PutUint16(e[4:], sel)
	copy(e[8:], name)
	return e
}

func TestParseDir(t *testing.T) {
	dir := append(entry(12, 0x20, "etc/boot-fail-wait"), entry(77, 0x2a, "opt/ginit/run")...)
	files, err := ParseDir(2, dir)
	if err != nil {
		t.Fatalf("ParseDir = %v", err)
	}
	want := []File{{12, 0x20, "etc/boot-fail-wait"}, {77, 0x2a, "opt/ginit/run"}}
	for i := range want {
		if files[i] != want[i] {
			t.Errorf("ParseDir[%d] = %+v; want %+v", i, files[i], want[i])
		}
	}
	// A name that fills all 56 bytes has no NUL.
	long := strings.Repeat("n", 56)
	if files, err := ParseDir(1, entry(1, 1, long)); err != nil || files[0].Name != long {
		t.Errorf("ParseDir(56-byte name) = %+v, %v; want the whole name", files, err)
	}
	if _, err := ParseDir(3, dir); err == nil || !strings.Contains(err.Error(), "128 bytes for 3 files") {
		t.Errorf("ParseDir(short) = %v; want an error naming the sizes", err)
	}
	if _, err := ParseDir(maxFiles+1, nil); err == nil {
		t.Errorf("ParseDir(%d files) = nil error; want one", maxFiles+1)
	}
}
