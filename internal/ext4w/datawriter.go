package ext4w

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// dataWriter writes file data into the image: blocks gathered into large
// buffers, each written by a goroutine while the next one fills, so that
// writing overlaps reading the layers. Where the file system takes it the
// data goes around the page cache (O_DIRECT): the image's data is
// written once, not copied by the kernel and written back later by the
// sync.
type dataWriter struct {
	f       *os.File // the image, opened again for direct writes where it can be
	own     bool     // f is ours to close
	cur     *dataBuf
	free    chan *dataBuf
	queue   chan *dataBuf
	stopped chan struct{}
	mu      sync.Mutex
	err     error // the first write that failed
}

// dataBuf is a run of blocks to write from block start.
type dataBuf struct {
	b     []byte
	start uint64
}

const (
	dataBufs    = 4
	dataBufSize = 2 << 20
)

func newDataWriter(f *os.File) *dataWriter {
	w := &dataWriter{f: f, free: make(chan *dataBuf, dataBufs), queue: make(chan *dataBuf, dataBufs), stopped: make(chan struct{})}
	for range dataBufs {
		w.free <- &dataBuf{b: alignedBuf(dataBufSize)}
	}
	if d, err := openDirect(f); err == nil {
		// A file system may open for direct writes and then refuse
		// them: a first block (the superblock's, written again last)
		// tells.
		if _, err := d.WriteAt(alignedBuf(BlockSize)[:BlockSize], 0); err == nil {
			w.f, w.own = d, true
		} else {
			d.Close()
		}
	}
	w.cur = <-w.free
	go w.run()
	return w
}

// alignedBuf is an empty buffer of n bytes' capacity at a block-aligned
// address, as direct writes need.
func alignedBuf(n int) []byte {
	b := make([]byte, n+BlockSize)
	off := 0
	if r := int(addrOf(b) % BlockSize); r != 0 {
		off = BlockSize - r
	}
	return b[off : off : off+n]
}

func (w *dataWriter) run() {
	defer close(w.stopped)
	for b := range w.queue {
		w.mu.Lock()
		failed := w.err != nil
		w.mu.Unlock()
		if !failed {
			if _, err := w.f.WriteAt(b.b, int64(b.start)*BlockSize); err != nil {
				w.mu.Lock()
				w.err = fmt.Errorf("writing %s: %w", w.f.Name(), err)
				w.mu.Unlock()
			}
		}
		b.b = b.b[:0]
		w.free <- b
	}
}

var errClosed = errors.New("image file closed")

// put adds block blk.
func (w *dataWriter) put(blk uint64, b []byte) error {
	if w.queue == nil {
		return errClosed
	}
	c := w.cur
	if len(c.b) > 0 && (c.start+uint64(len(c.b))/BlockSize != blk || len(c.b)+len(b) > cap(c.b)) {
		if err := w.submit(); err != nil {
			return err
		}
		c = w.cur
	}
	if len(c.b) == 0 {
		c.start = blk
	}
	c.b = append(c.b, b...)
	return nil
}

// submit queues the current buffer and takes a free one.
func (w *dataWriter) submit() error {
	w.queue <- w.cur
	w.cur = <-w.free
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// flush writes everything put so far and waits for it.
func (w *dataWriter) flush() error {
	if w.queue == nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.err
	}
	if len(w.cur.b) > 0 {
		if err := w.submit(); err != nil {
			return err
		}
	}
	// Every buffer back in the free list: all written.
	held := []*dataBuf{w.cur}
	for len(held) < dataBufs {
		held = append(held, <-w.free)
	}
	w.cur = held[0]
	for _, b := range held[1:] {
		w.free <- b
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// close flushes and stops the writer.
func (w *dataWriter) close() error {
	if w.queue == nil {
		return nil
	}
	err := w.flush()
	close(w.queue)
	<-w.stopped
	w.queue = nil
	if w.own {
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
