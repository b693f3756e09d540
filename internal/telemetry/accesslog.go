// Package telemetry holds the gateway's logging plumbing (and, later, metrics and tracing).
package telemetry

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// BufferedWriter batches log lines so the access log costs no write system call per request.
// Lines are flushed when the buffer fills, every interval, and on Close. Safe for concurrent use;
// each Write is kept whole.
type BufferedWriter struct {
	mu     sync.Mutex
	w      *bufio.Writer
	under  io.Writer
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// NewBufferedWriter wraps w with a buffer of size bytes flushed every interval. size 0 writes
// through.
func NewBufferedWriter(w io.Writer, size int, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{under: w, stop: make(chan struct{}), done: make(chan struct{})}
	if size > 0 {
		b.w = bufio.NewWriterSize(w, size)
	}
	go b.loop(interval)
	return b
}

func (b *BufferedWriter) loop(interval time.Duration) {
	defer close(b.done)
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Write implements io.Writer.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil || b.closed {
		return b.under.Write(p)
	}
	return b.w.Write(p)
}

// Flush writes out buffered lines.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil {
		return nil
	}
	return b.w.Flush()
}

// Close flushes and stops the background flusher. It does not close the underlying writer.
func (b *BufferedWriter) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w != nil {
		return b.w.Flush()
	}
	return nil
}
