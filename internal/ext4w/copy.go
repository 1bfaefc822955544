package ext4w

import (
	"fmt"
	"io"
	"os"
)

// copier copies file data from the spool into the image, joining
// stretches that continue each other in both files into one copy.
type copier struct {
	src, dst *os.File
	progress func(int64)
	srcOff   int64
	dstOff   int64
	n        int64
	buf      []byte
	noKernel bool // copy_file_range is not available between these files
}

func newCopier(src, dst *os.File, progress func(int64)) *copier {
	return &copier{src: src, dst: dst, progress: progress}
}

func (c *copier) add(srcOff, dstOff, n int64) error {
	if c.n > 0 && c.srcOff+c.n == srcOff && c.dstOff+c.n == dstOff && c.n < 64<<20 {
		c.n += n
		return nil
	}
	if err := c.flush(); err != nil {
		return err
	}
	c.srcOff, c.dstOff, c.n = srcOff, dstOff, n
	return nil
}

func (c *copier) flush() error {
	if c.n == 0 {
		return nil
	}
	n := c.n
	c.n = 0
	if !c.noKernel {
		done, err := copyRange(c.src, c.dst, c.srcOff, c.dstOff, n)
		if err == nil {
			c.progress(n)
			return nil
		}
		if done > 0 || err != errNoCopyRange {
			return fmt.Errorf("copying file data into %s: %w", c.dst.Name(), err)
		}
		c.noKernel = true
	}
	if c.buf == nil {
		c.buf = make([]byte, 1<<20)
	}
	for off := int64(0); off < n; {
		chunk := c.buf[:min(int64(len(c.buf)), n-off)]
		if _, err := c.src.ReadAt(chunk, c.srcOff+off); err != nil && err != io.EOF {
			return fmt.Errorf("reading spool: %w", err)
		}
		if _, err := c.dst.WriteAt(chunk, c.dstOff+off); err != nil {
			return fmt.Errorf("writing %s: %w", c.dst.Name(), err)
		}
		off += int64(len(chunk))
	}
	c.progress(n)
	return nil
}
