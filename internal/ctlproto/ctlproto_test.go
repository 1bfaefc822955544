package ctlproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func frame(t testing.TB, m *Message) []byte {
	t.Helper()
	b, err := Encode(m)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", m, err)
	}
	return b
}

// rawFrame frames body as it is, valid or not.
func rawFrame(body string) []byte {
	b := append([]byte{}, Magic[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

func exit(n int) *int { return &n }

// Every message type survives a round trip through a frame.
func TestRoundTrip(t *testing.T) {
	msgs := []*Message{
		{Type: Hello, Version: Version},
		{Session: 1, Type: Exec, Exec: &ExecSpec{Argv: []string{"sh", "-c", "echo hi"}, Env: []string{"A=b"}, Dir: "/tmp", User: "1000:1000", TTY: true, Size: &WinSize{Rows: 24, Cols: 80}, Stdin: true}},
		{Session: 1, Type: Stdin, Data: []byte("keys\r")},
		{Session: 1, Type: Stdout, Data: []byte{0, 1, 2, 0xff}},
		{Session: 1, Type: Stderr, Data: bytes.Repeat([]byte("e"), MaxData)},
		{Session: 1, Type: EOF},
		{Session: 1, Type: Signal, Signal: 15},
		{Session: 1, Type: Resize, Size: &WinSize{Rows: 50, Cols: 132}},
		{Session: 1, Type: Exit, Exit: 42},
		{Session: 2, Type: StatusReq},
		{Session: 2, Type: StatusReq, Status: &Status{Phase: PhaseExited, Boot: []BootPhase{{"init", 310}}, Pid: 7, Exit: exit(0)}},
		{Session: 3, Type: Events},
		{Session: 3, Type: Event, Event: &EventMsg{Name: EventExited, MS: 2000, Exit: exit(137)}},
		{Session: 4, Type: Stop},
		{Session: 4, Type: Error, Error: "no"},
	}
	var stream []byte
	for _, m := range msgs {
		stream = append(stream, frame(t, m)...)
	}
	d := NewDecoder(bytes.NewReader(stream))
	for _, want := range msgs {
		got, err := d.Decode()
		if err != nil {
			t.Fatalf("Decode: %v; want %+v", err, want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode = %+v; want %+v", got, want)
		}
	}
	if _, err := d.Decode(); err != io.EOF {
		t.Errorf("Decode at the end = %v; want io.EOF", err)
	}
	if n := d.Skipped(); n != 0 {
		t.Errorf("Skipped = %d on a clean stream", n)
	}
}

// Encode refuses what a decoder would refuse.
func TestEncodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
		want string
	}{
		{"no type", Message{}, "without a type"},
		{"unknown type", Message{Type: "format-disk"}, "unknown message type"},
		{"exec without argv", Message{Type: Exec, Exec: &ExecSpec{}}, "empty argv"},
		{"exec without spec", Message{Type: Exec}, "empty argv"},
		{"exec bad env", Message{Type: Exec, Exec: &ExecSpec{Argv: []string{"x"}, Env: []string{"=v"}}}, "NAME=VALUE"},
		{"exec too many args", Message{Type: Exec, Exec: &ExecSpec{Argv: append([]string{"x"}, make([]string, MaxArgs)...)}}, "more than"},
		{"signal 0", Message{Type: Signal}, "not a signal"},
		{"signal 65", Message{Type: Signal, Signal: 65}, "not a signal"},
		{"resize without size", Message{Type: Resize}, "no size"},
		{"data too big", Message{Type: Stdin, Data: make([]byte, MaxData+1)}, "over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(&tc.m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Encode = %v; want an error with %q", err, tc.want)
			}
		})
	}
}

// Garbage, oversized headers and bad bodies cost only themselves: the
// decoder finds the next good frame after each.
func TestDecodeRecovers(t *testing.T) {
	good := frame(t, &Message{Session: 9, Type: StatusReq})
	huge := append(append([]byte{}, Magic[:]...), 0xff, 0xff, 0xff, 0xff)
	for _, tc := range []struct {
		name    string
		before  []byte
		wantErr []uint32 // sessions of the MessageErrors before the good frame
	}{
		{"garbage", []byte("\x00\x01hello world\r\nGCT"), nil},
		{"half a magic", []byte("GCTGCT"), nil},
		{"oversized length", huge, nil},
		{"zero length", rawFrame(""), nil},
		{"not json", rawFrame("{{{"), []uint32{0}},
		{"unknown type names its session", rawFrame(`{"session":5,"type":"reboot"}`), []uint32{5}},
		{"wrong field type", rawFrame(`{"session":6,"type":"signal","signal":"KILL"}`), []uint32{6}},
		{"exec without argv", rawFrame(`{"session":7,"type":"exec","exec":{}}`), []uint32{7}},
		{"json array", rawFrame(`[1,2]`), []uint32{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(bytes.NewReader(append(append([]byte{}, tc.before...), good...)))
			for _, s := range tc.wantErr {
				_, err := d.Decode()
				var me *MessageError
				if !errors.As(err, &me) || me.Session != s {
					t.Fatalf("Decode = %v; want a MessageError for session %d", err, s)
				}
			}
			m, err := d.Decode()
			if err != nil || m.Session != 9 || m.Type != StatusReq {
				t.Fatalf("Decode after %s = %+v, %v; want the status request of session 9", tc.name, m, err)
			}
			if tc.wantErr == nil && d.Skipped() == 0 {
				t.Errorf("Skipped = 0; want the garbage counted")
			}
		})
	}
}

// A stream that ends inside a frame says so.
func TestDecodeTruncated(t *testing.T) {
	f := frame(t, &Message{Session: 1, Type: Stdin, Data: []byte("abc")})
	d := NewDecoder(bytes.NewReader(f[:len(f)-2]))
	if _, err := d.Decode(); err != io.ErrUnexpectedEOF {
		t.Errorf("Decode of a cut frame = %v; want io.ErrUnexpectedEOF", err)
	}
}

// oneByte reads one byte at a time, as a slow serial port may.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestDecodeByteByByte(t *testing.T) {
	var stream []byte
	for i := uint32(1); i <= 3; i++ {
		stream = append(stream, "xx"...)
		stream = append(stream, frame(t, &Message{Session: i, Type: Stdin, Data: []byte("GCTL")})...)
	}
	d := NewDecoder(oneByte{bytes.NewReader(stream)})
	for i := uint32(1); i <= 3; i++ {
		m, err := d.Decode()
		if err != nil || m.Session != i || string(m.Data) != "GCTL" {
			t.Fatalf("Decode %d = %+v, %v", i, m, err)
		}
	}
}

// FuzzDecode: no input makes the decoder panic or loop, and every message
// it returns encodes again and decodes to itself.
func FuzzDecode(f *testing.F) {
	f.Add(frame(f, &Message{Type: Hello, Version: 1}))
	f.Add(frame(f, &Message{Session: 1, Type: Exec, Exec: &ExecSpec{Argv: []string{"true"}, TTY: true, Size: &WinSize{24, 80}}}))
	f.Add(frame(f, &Message{Session: 2, Type: Stdin, Data: []byte("data")}))
	f.Add(frame(f, &Message{Session: 3, Type: Resize, Size: &WinSize{1, 1}}))
	f.Add(frame(f, &Message{Session: 3, Type: Window, Window: 8}))
	f.Add(frame(f, &Message{Session: 5, Type: Hangup}))
	f.Add(rawFrame(`{"session":4294967295,"type":"signal","signal":9}`))
	f.Add(rawFrame(`{"session":-1,"type":"exec","exec":{"argv":null}}`))
	f.Add(rawFrame(`{"type":"event","event":{"exit":1e400}}`))
	f.Add([]byte("GCTL\x00\x00\x00\x02{}GCTL"))
	f.Add([]byte("\xff\xfe garbage"))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(bytes.NewReader(in))
		for range len(in) + 1 {
			m, err := d.Decode()
			var me *MessageError
			switch {
			case err == nil:
				again, err := NewDecoder(bytes.NewReader(frame(t, m))).Decode()
				if err != nil || !reflect.DeepEqual(again, m) {
					t.Fatalf("re-decoded %+v as %+v, %v", m, again, err)
				}
			case errors.As(err, &me):
			default:
				return // the end of the input
			}
		}
		t.Fatalf("Decode returned more messages than the input has bytes")
	})
}
