package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// maxSockPath is what a Unix socket's path may hold (sun_path, less its
// NUL).
const maxSockPath = 107

// DialUnix connects to the Unix socket at path, also when path is longer
// than a socket address holds: it then goes through the directory's file
// descriptor, /proc/self/fd/N/NAME.
func DialUnix(path string, timeout time.Duration) (net.Conn, error) {
	if len(path) <= maxSockPath {
		return net.DialTimeout("unix", path, timeout)
	}
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	defer dir.Close()
	return net.DialTimeout("unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)), timeout)
}

// qmpReply is one message from QEMU's QMP monitor: a greeting, an event,
// a command's return or its error.
type qmpReply struct {
	QMP    json.RawMessage `json:"QMP"`
	Event  string          `json:"event"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// QMP runs command (system_powerdown, quit, ...) on the QMP monitor at
// sock and waits for its answer. QEMU serves one client at a time, so the
// connection closes at once.
func QMP(sock, command string) error {
	c, err := DialUnix(sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("QMP %s: %w", sock, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	read := func() (qmpReply, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return qmpReply{}, err
			}
			var m qmpReply
			if err := json.Unmarshal(line, &m); err != nil {
				return qmpReply{}, fmt.Errorf("QMP %s: %q: %w", sock, line, err)
			}
			if m.Event == "" {
				return m, nil
			}
		}
	}
	if m, err := read(); err != nil || m.QMP == nil {
		return fmt.Errorf("QMP %s: no greeting: %w", sock, err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		if _, err := fmt.Fprintf(c, "{\"execute\":%q}\n", cmd); err != nil {
			return fmt.Errorf("QMP %s %s: %w", sock, cmd, err)
		}
		m, err := read()
		if err != nil {
			if cmd == "quit" && errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("QMP %s %s: %w", sock, cmd, err)
		}
		if m.Error != nil {
			return fmt.Errorf("QMP %s %s: %s: %s", sock, cmd, m.Error.Class, m.Error.Desc)
		}
	}
	return nil
}

// QMPReady reports whether QEMU answers on its QMP monitor at sock: then
// it has made its devices and runs the machine.
func QMPReady(sock string) bool {
	c, err := DialUnix(sock, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	var m qmpReply
	return err == nil && json.Unmarshal(line, &m) == nil && m.QMP != nil
}
