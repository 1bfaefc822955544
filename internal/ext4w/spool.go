package ext4w

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
)

// Data is where a regular file's contents are: its size and the runs of
// its blocks that hold anything but zeros, each stored whole and in order
// from an offset of the spool (only a file's last block may be short).
// Blocks in no run are holes.
type Data struct {
	Size int64
	Runs []Run
	Sum  [32]byte // sha256 of the size and each data block with its place, when the spool hashes
}

// Run is a run of a file's blocks in the spool.
type Run struct {
	Block int64 // first block of the file
	N     int64 // blocks
	Off   int64 // offset in the spool
}

// bytes is the run's length in the spool, for a file of size bytes.
func (r Run) bytes(size int64) int64 { return min(r.N*BlockSize, size-r.Block*BlockSize) }

// Blocks is the file's blocks that hold data.
func (d *Data) Blocks() int64 {
	var n int64
	for _, r := range d.Runs {
		n += r.N
	}
	return n
}

// Spool holds file contents as a tree is built: one temporary file,
// removed as soon as it is made, that the image is later copied from.
type Spool struct {
	f    *os.File
	w    *bufio
	off  int64 // bytes written, block-aligned
	buf  []byte
	hash bool
	h    hash.Hash
	fw   fileWriter
}

// NewSpool makes a spool in dir (os.TempDir() when empty). With hash set
// every file's sha256 is taken as it is spooled (Data.Sum).
func NewSpool(dir string, hashContents bool) (*Spool, error) {
	f, err := os.CreateTemp(dir, "oci2disk-spool-")
	if err != nil {
		return nil, fmt.Errorf("creating spool: %w", err)
	}
	// Unlinked at once: nothing is left behind, whatever happens.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating spool: %w", err)
	}
	s := &Spool{f: f, buf: make([]byte, 1<<20), hash: hashContents, fw: fileWriter{block: new([BlockSize]byte)}}
	s.w = &bufio{f: f, buf: make([]byte, 0, 4<<20)}
	if hashContents {
		s.h = sha256.New()
	}
	return s, nil
}

// Close releases the spool.
func (s *Spool) Close() error { return s.f.Close() }

// Size is the bytes spooled.
func (s *Spool) Size() int64 { return s.off }

var zeroBlock = make([]byte, BlockSize)

// alignAbove: files from this size on start block-aligned in the spool;
// smaller ones are packed, to keep the spool small and its writes few.
const alignAbove = 256 << 10

// Add spools size bytes of r and says where they went. All-zero blocks
// are not written: they become holes. A reader that can skip holes (a
// tar.Reader on a sparse entry, through io.WriterTo and Seek) skips them
// without producing their zeros.
func (s *Spool) Add(r io.Reader, size int64) (Data, error) {
	d := Data{Size: size}
	if size >= alignAbove && s.off%BlockSize != 0 {
		// A large file starts on a block boundary, so the kernel can
		// copy it into the image without passing through here.
		if err := s.w.write(zeroBlock[:BlockSize-s.off%BlockSize]); err != nil {
			return Data{}, fmt.Errorf("writing spool: %w", err)
		}
		s.off += BlockSize - s.off%BlockSize
	}
	// One writer, and its block buffer, serves every file in turn.
	fw := &s.fw
	*fw = fileWriter{s: s, d: &d, block: fw.block}
	if s.h != nil {
		s.h.Reset()
		fmt.Fprintf(s.h, "%d\n", size)
	}
	var n int64
	var err error
	if wt, ok := r.(io.WriterTo); ok {
		n, err = wt.WriteTo(fw)
	} else {
		n, err = io.CopyBuffer(fw, io.LimitReader(r, size), s.buf)
	}
	if err == nil && n != size && fw.end() != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = fw.flush()
	}
	if err != nil {
		return Data{}, err
	}
	if s.h != nil {
		s.h.Sum(d.Sum[:0])
	}
	return d, nil
}

// fileWriter takes one file's bytes, in order, with holes skipped by Seek,
// and spools its blocks that are not all zeros.
type fileWriter struct {
	s     *Spool
	d     *Data
	pos   int64 // next byte of the file
	block *[BlockSize]byte
	cur   int64 // the block in block, -1 for none
	dirty bool
}

func (w *fileWriter) end() int64 { return w.pos }

func (w *fileWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.pos+int64(n) > w.d.Size {
		return 0, fmt.Errorf("file longer than its %d bytes", w.d.Size)
	}
	for len(p) > 0 {
		blk, off := w.pos/BlockSize, int(w.pos%BlockSize)
		if !w.dirty || blk != w.cur {
			if err := w.flush(); err != nil {
				return 0, err
			}
			if off == 0 && len(p) >= BlockSize {
				// Whole blocks go straight to the spool.
				full := p[:len(p)&^(BlockSize-1)]
				for len(full) > 0 {
					if !bytes.Equal(full[:BlockSize], zeroBlock) {
						if err := w.s.put(w.d, blk, full[:BlockSize]); err != nil {
							return 0, err
						}
						w.hashBlock(blk, full[:BlockSize])
					}
					full, p = full[BlockSize:], p[BlockSize:]
					blk++
					w.pos += BlockSize
				}
				continue
			}
			w.cur, w.dirty = blk, true
			clear(w.block[:])
		}
		k := copy(w.block[off:], p)
		p = p[k:]
		w.pos += int64(k)
	}
	return n, nil
}

// Seek skips a hole (io.SeekCurrent or io.SeekStart forward only).
func (w *fileWriter) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += w.pos
	case io.SeekStart:
	default:
		return 0, fmt.Errorf("seek whence %d not supported", whence)
	}
	if offset < w.pos || offset > w.d.Size {
		return 0, fmt.Errorf("seek to %d from %d: not forward within the file", offset, w.pos)
	}
	w.pos = offset
	return offset, nil
}

// flush spools the block being filled, unless it is all zeros.
func (w *fileWriter) flush() error {
	if !w.dirty {
		return nil
	}
	w.dirty = false
	b := w.block[:min(BlockSize, w.d.Size-w.cur*BlockSize)]
	if bytes.Equal(b, zeroBlock[:len(b)]) {
		return nil
	}
	w.hashBlock(w.cur, b)
	return w.s.put(w.d, w.cur, b)
}

// hashBlock adds a block to the file's hash: where it is and what it holds.
func (w *fileWriter) hashBlock(blk int64, b []byte) {
	if w.s.h != nil {
		fmt.Fprintf(w.s.h, "%d\n", blk)
		w.s.h.Write(b)
	}
}

// put spools one block of the file (the last may be short), packed
// after the one before.
func (s *Spool) put(d *Data, block int64, b []byte) error {
	if n := len(d.Runs); n > 0 && d.Runs[n-1].Block+d.Runs[n-1].N == block && d.Runs[n-1].Off+d.Runs[n-1].N*BlockSize == s.off {
		d.Runs[n-1].N++
	} else {
		d.Runs = append(d.Runs, Run{Block: block, N: 1, Off: s.off})
	}
	if err := s.w.write(b); err != nil {
		return fmt.Errorf("writing spool: %w", err)
	}
	s.off += int64(len(b))
	return nil
}

// AddBytes spools b.
func (s *Spool) AddBytes(b []byte) (Data, error) {
	return s.Add(bytes.NewReader(b), int64(len(b)))
}

// finish flushes what is buffered, before the spool is read.
func (s *Spool) finish() error { return s.w.flush() }

// ReadFile returns the contents of d.
func (s *Spool) ReadFile(d Data) ([]byte, error) {
	if err := s.finish(); err != nil {
		return nil, err
	}
	if d.Size > 64<<20 {
		return nil, errors.New("file too large to read into memory")
	}
	out := make([]byte, d.Size)
	for _, r := range d.Runs {
		lo := r.Block * BlockSize
		hi := min(lo+r.N*BlockSize, d.Size)
		if _, err := s.f.ReadAt(out[lo:hi], r.Off); err != nil {
			return nil, fmt.Errorf("reading spool: %w", err)
		}
	}
	return out, nil
}

// bufio is a minimal write buffer (the spool is only appended to).
type bufio struct {
	f   *os.File
	buf []byte
}

func (b *bufio) write(p []byte) error {
	if len(b.buf)+len(p) > cap(b.buf) {
		if err := b.flush(); err != nil {
			return err
		}
	}
	b.buf = append(b.buf, p...)
	return nil
}

func (b *bufio) flush() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.f.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}
