package h1

import (
	"bufio"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/wire"
)

// body reads one request body off the connection: Content-Length bytes, or a chunked body and
// its trailers. It is safe for use by several goroutines (a handler may hand the body to
// another goroutine), and fails every read once the handler has returned, so a goroutine that
// outlives its request can never read the next request's bytes.
type body struct {
	mu      sync.Mutex
	c       *conn
	src     *bufio.Reader
	req     *http.Request // the request handed to the handler (trailers are merged into it)
	remain  int64         // fixed length: bytes left
	chunked bool
	chunk   wire.ChunkedReader
	eof     bool
	closed  bool // the handler returned
	err     error
	// userClosed is set by Close; atomic so that Close never waits for a Read in progress.
	userClosed atomic.Bool
	// expect is set while a "100 Continue" is owed before the first read. It is atomic
	// because an explicit WriteHeader(100) clears it from the handler's goroutine while
	// another goroutine may be reading the body.
	expect   atomic.Bool
	maxTrail int
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed, b.userClosed.Load():
		return 0, http.ErrBodyReadAfterClose
	case b.err != nil:
		return 0, b.err
	case b.eof:
		return 0, io.EOF
	}
	if b.expect.Swap(false) {
		if err := b.c.sendContinue(); err != nil {
			b.err = err
			return 0, err
		}
	}
	var n int
	var err error
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		n, err = b.readFixed(p)
	}
	switch {
	case err == io.EOF:
		b.eof = true
		b.c.bodyDone()
	case err != nil:
		b.err = err
	}
	return n, err
}

// Close marks the body closed for the handler (later reads fail with
// http.ErrBodyReadAfterClose); the server drains or discards what is left.
func (b *body) Close() error {
	b.userClosed.Store(true)
	return nil
}

// finish is called once the handler has returned: later reads fail, and it reports whether
// the body was read to its end (the connection can then serve another request).
func (b *body) finish() (complete bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.expect.Store(false)
	return b.eof
}

// drain reads what is left of the body, up to limit bytes, so the connection can be reused.
// It must be called after finish, on the connection's goroutine.
func (b *body) drain(limit int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return true
	}
	if b.err != nil {
		return false
	}
	if !b.chunked && b.remain > limit {
		return false
	}
	var scratch [4096]byte
	var total int64
	for total <= limit {
		var n int
		var err error
		if b.chunked {
			n, err = b.readChunked(scratch[:])
		} else {
			n, err = b.readFixed(scratch[:])
		}
		total += int64(n)
		if err == io.EOF {
			b.eof = true
			return true
		}
		if err != nil {
			b.err = err
			return false
		}
	}
	return false
}

func (b *body) readFixed(p []byte) (int, error) { return wire.ReadFixed(b.src, p, &b.remain) }

func (b *body) readChunked(p []byte) (int, error) {
	if b.chunk.Src == nil {
		b.chunk.Src, b.chunk.MaxTrailer = b.src, b.maxTrail
		if b.req != nil {
			b.chunk.Trailer, b.chunk.DeclaredOnly = &b.req.Trailer, true
		}
	}
	return b.chunk.Read(p)
}
