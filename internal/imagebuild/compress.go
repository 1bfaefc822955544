package imagebuild

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// xzArgs compress as the kernel's initramfs unpacker needs: it checks CRC32
// only (not xz's default CRC64). One thread keeps the output the same on
// every machine.
var xzArgs = []string{"--check=crc32", "-9", "-T1", "-c"}

// XZ compresses r into w with the xz program.
func XZ(w io.Writer, r io.Reader) error {
	if _, err := exec.LookPath("xz"); err != nil {
		return fmt.Errorf("xz compression needs the xz program (Debian package xz-utils): %w", err)
	}
	cmd := exec.Command("xz", xzArgs...)
	cmd.Stdin, cmd.Stdout = r, w
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("xz %s: %w: %s", strings.Join(xzArgs, " "), err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// GZ compresses r into w with gzip at its best compression and a header
// that carries no name and no time, so the output is reproducible.
func GZ(w io.Writer, r io.Reader) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, r); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return zw.Close()
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// xzSize returns the size of data compressed alone with XZ.
func xzSize(data []byte) (int64, error) {
	var c countWriter
	if err := XZ(&c, bytes.NewReader(data)); err != nil {
		return 0, err
	}
	return c.n, nil
}
