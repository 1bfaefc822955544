// Package powerbtn watches the ACPI power button (QEMU's system_powerdown,
// a cloud's "stop" button) through its evdev device, so PID 1 can stop the
// machine cleanly when it is pressed.
package powerbtn

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Linux input event codes.
const (
	evKey    = 0x01
	keyPower = 116
	// eventSize is sizeof(struct input_event) on 64-bit: a timeval, then
	// type, code (u16) and value (s32).
	eventSize = 24
)

// Devices returns the /dev/input/event* nodes whose device is named like a
// power button, read from sysClassInput (/sys/class/input).
func Devices(sysClassInput, devInput string) []string {
	names, _ := filepath.Glob(filepath.Join(sysClassInput, "event*", "device", "name"))
	var devs []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil || !strings.Contains(strings.ToLower(string(b)), "power button") {
			continue
		}
		event := filepath.Base(filepath.Dir(filepath.Dir(n)))
		devs = append(devs, filepath.Join(devInput, event))
	}
	return devs
}

// IsPowerPress says whether one input_event is the power key going down.
func IsPowerPress(ev []byte) bool {
	if len(ev) < eventSize {
		return false
	}
	typ := binary.NativeEndian.Uint16(ev[16:])
	code := binary.NativeEndian.Uint16(ev[18:])
	value := int32(binary.NativeEndian.Uint32(ev[20:]))
	return typ == evKey && code == keyPower && value == 1
}

// Watch opens every power button device and calls onPress for each press,
// from one goroutine per device, until the devices go away. It returns the
// devices it watches.
func Watch(onPress func(), onErr func(error)) []string {
	devs := Devices("/sys/class/input", "/dev/input")
	for _, dev := range devs {
		f, err := os.Open(dev)
		if err != nil {
			onErr(fmt.Errorf("open power button %s: %w", dev, err))
			continue
		}
		go func() {
			defer f.Close()
			defer func() {
				if r := recover(); r != nil {
					onErr(fmt.Errorf("power button %s: panic: %v", dev, r))
				}
			}()
			buf := make([]byte, eventSize*64)
			for {
				n, err := f.Read(buf)
				if err != nil {
					onErr(fmt.Errorf("read power button %s: %w", dev, err))
					return
				}
				for off := 0; off+eventSize <= n; off += eventSize {
					if IsPowerPress(buf[off : off+eventSize]) {
						onPress()
					}
				}
			}
		}()
	}
	return devs
}
