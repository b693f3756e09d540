package upstream

import (
	"io"
	"net/http"
	"sync"
)

// ClientBodyError is an attempt's error when reading the client's request body failed: a
// malformed chunk, a body over the size limit, a client that stopped sending or went away. It is
// the client's doing, not the target's: the attempt counts as Canceled (no breaker or passive
// health failure, no retry), and the client gets a 4xx rather than a 502.
type ClientBodyError struct {
	// Err is the error the body's Read returned.
	Err error
}

func (e *ClientBodyError) Error() string {
	return "reading the client's request body: " + e.Err.Error()
}

// Unwrap returns Err.
func (e *ClientBodyError) Unwrap() error { return e.Err }

// clientBody wraps the client's request body for an attempt and remembers the first read error
// other than io.EOF. The transport may read it on another goroutine (net/http's write loop), so
// the error is guarded. Errors after the transport closed the body are its own doing, not the
// client's: an HTTP/2 transport whose stream the target reset closes the body, and the read
// blocked on it then fails.
type clientBody struct {
	rc     io.ReadCloser
	mu     sync.Mutex
	err    error
	closed bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF && err != http.ErrBodyReadAfterClose {
		b.mu.Lock()
		if b.err == nil && !b.closed {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *clientBody) Close() error {
	b.mu.Lock()
	b.closed = true // before the close, which wakes a blocked Read with an error
	b.mu.Unlock()
	return b.rc.Close()
}

// blame returns err, or err as a *ClientBodyError when reading the body failed: a transport
// reports the body's read error as its own (or, having lost the request half-way, a write or
// read error on the target's connection).
func (b *clientBody) blame(err error) error {
	if b == nil || err == nil {
		return err
	}
	b.mu.Lock()
	berr := b.err
	b.mu.Unlock()
	if berr == nil {
		return err
	}
	return &ClientBodyError{Err: berr}
}
