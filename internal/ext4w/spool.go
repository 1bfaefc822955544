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
// its blocks that hold anything but zeros, each at a block-aligned offset
// of the spool. Blocks in no run are holes.
type Data struct {
	Size int64
	Runs []Run
	Sum  [32]byte // sha256 of the contents, when the spool hashes
}

// Run is a run of a file's blocks in the spool.
type Run struct {
	Block int64 // first block of the file
	N     int64 // blocks
	Off   int64 // offset in the spool, a multiple of BlockSize
}

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
	s := &Spool{f: f, buf: make([]byte, 1<<20), hash: hashContents}
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

// Add spools size bytes of r and says where they went. All-zero blocks
// are not written: they become holes.
func (s *Spool) Add(r io.Reader, size int64) (Data, error) {
	d := Data{Size: size}
	if s.h != nil {
		s.h.Reset()
	}
	var block int64
	for left := size; left > 0; {
		chunk := s.buf[:min(left, int64(len(s.buf)))]
		if _, err := io.ReadFull(r, chunk); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Data{}, err
		}
		left -= int64(len(chunk))
		if s.h != nil {
			s.h.Write(chunk)
		}
		for len(chunk) > 0 {
			b := chunk[:min(len(chunk), BlockSize)]
			chunk = chunk[len(b):]
			if !bytes.Equal(b, zeroBlock[:len(b)]) {
				if err := s.put(&d, block, b); err != nil {
					return Data{}, err
				}
			}
			block++
		}
	}
	if s.h != nil {
		s.h.Sum(d.Sum[:0])
	}
	return d, nil
}

// put spools one block of the file (the last may be short).
func (s *Spool) put(d *Data, block int64, b []byte) error {
	if n := len(d.Runs); n > 0 && d.Runs[n-1].Block+d.Runs[n-1].N == block && d.Runs[n-1].Off+d.Runs[n-1].N*BlockSize == s.off {
		d.Runs[n-1].N++
	} else {
		d.Runs = append(d.Runs, Run{Block: block, N: 1, Off: s.off})
	}
	if err := s.w.write(b); err != nil {
		return fmt.Errorf("writing spool: %w", err)
	}
	if pad := BlockSize - len(b); pad > 0 {
		if err := s.w.write(zeroBlock[:pad]); err != nil {
			return fmt.Errorf("writing spool: %w", err)
		}
	}
	s.off += BlockSize
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
