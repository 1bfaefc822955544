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
// its blocks that hold anything but zeros, in the image. Blocks in no run
// are holes.
type Data struct {
	Size int64
	Runs []Run
	Sum  [32]byte // sha256 of the size and each data block with its place, when the image hashes
}

// Run is a run of a file's blocks in the image.
type Run struct {
	Block int64  // first block of the file
	N     int64  // blocks
	At    uint64 // the image's block that holds it
}

// Blocks is the file's blocks that hold data.
func (d *Data) Blocks() int64 {
	var n int64
	for _, r := range d.Runs {
		n += r.N
	}
	return n
}

// ImageFile is the file an image is written to. File contents go to
// their final blocks as a tree is built, each written once; blocks of a
// file that a later layer replaces or deletes are given back and reused
// by the files that follow. The metadata is written once the tree is
// final (Plan.Write).
type ImageFile struct {
	f     *os.File
	space *space
	w     *dataWriter
	buf   []byte
	h     hash.Hash
	fw    fileWriter
}

// NewImageFile writes an image to f, an empty (or all-zero) regular
// file. With hashContents every file's sha256 is taken as it is written
// (Data.Sum).
func NewImageFile(f *os.File, hashContents bool) *ImageFile {
	im := &ImageFile{f: f, space: newSpace(), buf: make([]byte, 1<<20), fw: fileWriter{block: new([BlockSize]byte)}}
	im.w = newDataWriter(f)
	if hashContents {
		im.h = sha256.New()
	}
	return im
}

// File is the file the image is written to.
func (im *ImageFile) File() *os.File { return im.f }

var zeroBlock = make([]byte, BlockSize)

// Add writes size bytes of r into the image and says where they went.
// All-zero blocks are not written: they become holes. A reader that can
// skip holes (through io.WriterTo and Seek) skips them without producing
// their zeros.
func (im *ImageFile) Add(r io.Reader, size int64) (Data, error) {
	d := Data{Size: size}
	fw := &im.fw
	*fw = fileWriter{im: im, d: &d, block: fw.block}
	// A file goes whole into a hole that holds it, or else to the tail.
	if size > 0 {
		if h, ok := im.space.hole(uint64((size + BlockSize - 1) / BlockSize)); ok {
			fw.hole = h
		}
	}
	if im.h != nil {
		im.h.Reset()
		fmt.Fprintf(im.h, "%d\n", size)
	}
	var n int64
	var err error
	if wt, ok := r.(io.WriterTo); ok {
		n, err = wt.WriteTo(fw)
	} else {
		n, err = io.CopyBuffer(fw, io.LimitReader(r, size), im.buf)
	}
	if err == nil && n != size && fw.end() != size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = fw.flush()
	}
	im.space.give(fw.hole)
	if err != nil {
		im.release(&d)
		return Data{}, err
	}
	if im.h != nil {
		im.h.Sum(d.Sum[:0])
	}
	return d, nil
}

// AddBytes writes b into the image.
func (im *ImageFile) AddBytes(b []byte) (Data, error) {
	return im.Add(bytes.NewReader(b), int64(len(b)))
}

// release gives a file's blocks back, for the files that follow.
func (im *ImageFile) release(d *Data) {
	for _, r := range d.Runs {
		im.space.give(extent{r.At, uint64(r.N)})
	}
	d.Runs = nil
}

// finish writes what is buffered.
func (im *ImageFile) finish() error { return im.w.flush() }

// Close stops the image's writer; the file itself stays open.
func (im *ImageFile) Close() error { return im.w.close() }

// ReadFile returns the contents of d.
func (im *ImageFile) ReadFile(d Data) ([]byte, error) {
	if err := im.finish(); err != nil {
		return nil, err
	}
	if d.Size > 64<<20 {
		return nil, errors.New("file too large to read into memory")
	}
	out := make([]byte, d.Size)
	for _, r := range d.Runs {
		lo := r.Block * BlockSize
		hi := min(lo+r.N*BlockSize, d.Size)
		if _, err := im.f.ReadAt(out[lo:hi], int64(r.At)*BlockSize); err != nil {
			return nil, fmt.Errorf("reading %s: %w", im.f.Name(), err)
		}
	}
	return out, nil
}

// fileWriter takes one file's bytes, in order, with holes skipped by Seek,
// and writes its blocks that are not all zeros.
type fileWriter struct {
	im    *ImageFile
	d     *Data
	hole  extent // the hole the file goes into, what is left of it
	pos   int64  // next byte of the file
	block *[BlockSize]byte
	cur   int64 // the block in block
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
				// Whole blocks go straight to the image.
				full := p[:len(p)&^(BlockSize-1)]
				for len(full) > 0 {
					if !bytes.Equal(full[:BlockSize], zeroBlock) {
						if err := w.put(blk, full[:BlockSize]); err != nil {
							return 0, err
						}
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

// flush writes the block being filled, unless it is all zeros; its tail
// past the file's end is zeros.
func (w *fileWriter) flush() error {
	if !w.dirty {
		return nil
	}
	w.dirty = false
	if bytes.Equal(w.block[:], zeroBlock) {
		return nil
	}
	return w.put(w.cur, w.block[:])
}

// put writes one block of the file, to the next block of its hole or of
// the tail, and adds it to the file's hash: where it is and what it holds.
func (w *fileWriter) put(blk int64, b []byte) error {
	var at uint64
	if w.hole.n > 0 {
		at = w.hole.start
		w.hole.start++
		w.hole.n--
	} else {
		e, err := w.im.space.tail(1)
		if err != nil {
			return err
		}
		at = e.start
	}
	d := w.d
	if n := len(d.Runs); n > 0 && d.Runs[n-1].Block+d.Runs[n-1].N == blk && d.Runs[n-1].At+uint64(d.Runs[n-1].N) == at {
		d.Runs[n-1].N++
	} else {
		d.Runs = append(d.Runs, Run{Block: blk, N: 1, At: at})
	}
	if h := w.im.h; h != nil {
		fmt.Fprintf(h, "%d\n", blk)
		h.Write(b[:min(BlockSize, d.Size-blk*BlockSize)])
	}
	return w.im.w.put(at, b)
}

// blockWriter writes blocks, gathering consecutive ones into one write
// (from an aligned buffer, for a file opened for direct writes).
type blockWriter struct {
	f     *os.File
	buf   []byte
	start uint64 // block of buf[0]
}

func (w *blockWriter) put(blk uint64, b []byte) error {
	if len(w.buf) > 0 && (w.start+uint64(len(w.buf))/BlockSize != blk || len(w.buf)+len(b) > cap(w.buf)) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if len(w.buf) == 0 {
		w.start = blk
	}
	w.buf = append(w.buf, b...)
	return nil
}

func (w *blockWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.f.WriteAt(w.buf, int64(w.start)*BlockSize); err != nil {
		return fmt.Errorf("writing %s: %w", w.f.Name(), err)
	}
	w.buf = w.buf[:0]
	return nil
}

// writeZeros writes n zero bytes to f at off.
func writeZeros(f *os.File, off, n int64) error {
	zeros := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return fmt.Errorf("zeroing %s: %w", f.Name(), err)
		}
		off, n = off+k, n-k
	}
	return nil
}
