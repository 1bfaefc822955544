package powerbtn

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func event(typ, code uint16, value int32) []byte {
	ev := make([]byte, eventSize)
	binary.NativeEndian.PutUint16(ev[16:], typ)
	binary.NativeEndian.PutUint16(ev[18:], code)
	binary.NativeEndian.PutUint32(ev[20:], uint32(value))
	return ev
}

func TestIsPowerPress(t *testing.T) {
	for _, tt := range []struct {
		ev   []byte
		want bool
	}{
		{event(evKey, keyPower, 1), true},
		{event(evKey, keyPower, 0), false}, // release
		{event(evKey, 30, 1), false},       // KEY_A
		{event(0, 0, 0), false},            // EV_SYN
		{make([]byte, 10), false},
	} {
		if got := IsPowerPress(tt.ev); got != tt.want {
			t.Errorf("IsPowerPress(%v) = %v; want %v", tt.ev, got, tt.want)
		}
	}
}

func TestDevices(t *testing.T) {
	sys := t.TempDir()
	for ev, name := range map[string]string{"event0": "AT Translated Set 2 keyboard", "event1": "Power Button", "event2": "Sleep Button"} {
		d := filepath.Join(sys, ev, "device")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "name"), []byte(name+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := Devices(sys, "/dev/input"), []string{"/dev/input/event1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Devices = %q; want %q", got, want)
	}
}
