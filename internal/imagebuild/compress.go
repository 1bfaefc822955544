package imagebuild

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// xzArgs are the xz options for an input of size bytes (or unknown, < 0).
// They compress as `xz --check=crc32 -9 -T1` does: the kernel's unpacker
// checks CRC32 only (not xz's default CRC64), and one thread keeps the
// output the same on every machine. The dictionary, though, is cut down to
// the smallest power of two that holds the whole input (1 MiB at least, -9's
// 64 MiB at most): the output is as small as with -9's own dictionary, while
// the kernel, which allocates the dictionary size written in the stream
// header to unpack an initramfs, needs megabytes instead of 64 MiB, which
// counts in a 128 MiB guest. The x86 BCJ filter first turns relative call
// addresses into absolute ones, which compress better: 5% off an image that
// is mostly machine code. uroot.json builds for amd64 only, and the kernel's
// unpacker has the filter (CONFIG_XZ_DEC_X86, on in Debian's kernels).
func xzArgs(size int64) []string {
	return []string{"--check=crc32", "--x86", "--lzma2=preset=9,dict=" + xzDict(size), "-T1", "-c"}
}

func xzDict(size int64) string {
	const minMiB, maxMiB = 1, 64
	mib := int64(minMiB)
	for mib < maxMiB && mib<<20 < size {
		mib <<= 1
	}
	if size < 0 {
		mib = maxMiB
	}
	return fmt.Sprintf("%dMiB", mib)
}

// XZ compresses r, of size bytes (negative if unknown), into w with the xz
// program.
func XZ(w io.Writer, r io.Reader, size int64) error {
	if _, err := exec.LookPath("xz"); err != nil {
		return fmt.Errorf("xz compression needs the xz program (Debian package xz-utils): %w", err)
	}
	xzArgs := xzArgs(size)
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
func GZ(w io.Writer, r io.Reader, _ int64) error {
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
	if err := XZ(&c, bytes.NewReader(data), int64(len(data))); err != nil {
		return 0, err
	}
	return c.n, nil
}
