package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

var (
	errMalformedChunk = errors.New("h1: malformed chunked request body")
	errTrailerLarge   = errors.New("h1: request trailers too large")
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
	remain  int64         // fixed length: bytes left; chunked: bytes left in this chunk
	chunked bool
	state   int // chunked: one of the chunk* states
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

const (
	chunkSize = iota
	chunkData
	chunkDataCRLF
)

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

func (b *body) readFixed(p []byte) (int, error) {
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.src.Read(p)
	b.remain -= int64(n)
	if b.remain == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	for {
		switch b.state {
		case chunkSize:
			line, err := b.line()
			if err != nil {
				return 0, err
			}
			size, ok := parseChunkSize(line)
			if !ok {
				return 0, errMalformedChunk
			}
			if size == 0 {
				if err := b.readTrailers(); err != nil {
					return 0, err
				}
				return 0, io.EOF
			}
			b.remain, b.state = size, chunkData
		case chunkData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > b.remain {
				p = p[:b.remain]
			}
			n, err := b.src.Read(p)
			b.remain -= int64(n)
			if b.remain == 0 {
				b.state = chunkDataCRLF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		case chunkDataCRLF:
			cr, err := b.src.ReadByte()
			if err != nil {
				return 0, unexpected(err)
			}
			lf, err := b.src.ReadByte()
			if err != nil {
				return 0, unexpected(err)
			}
			if cr != '\r' || lf != '\n' {
				return 0, errMalformedChunk
			}
			b.state = chunkSize
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// line reads one CRLF-terminated line of a chunked body (a size line or a trailer field),
// without the CRLF. Lines longer than the reader's buffer are refused.
func (b *body) line() (string, error) {
	l, err := b.src.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return "", errMalformedChunk
	case err != nil:
		return "", unexpected(err)
	case len(l) < 2 || l[len(l)-2] != '\r':
		return "", errMalformedChunk
	}
	return string(l[:len(l)-2]), nil
}

// parseChunkSize reads "hex-size [ *(BWS ';' ext) ]". At most 15 hex digits (no overflow).
func parseChunkSize(line string) (int64, bool) {
	size := line
	if i := strings.IndexByte(line, ';'); i >= 0 {
		size = strings.TrimRight(line[:i], " \t")
		if !validFieldValue(line[i:]) {
			return 0, false
		}
	}
	if size == "" || len(size) > 15 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(size); i++ {
		c := size[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// readTrailers reads the trailer section after the last chunk into the request's Trailer.
// Fields that would change how the message is framed or routed are dropped (RFC 9110 §6.5.1).
func (b *body) readTrailers() error {
	total := 0
	for {
		line, err := b.line()
		if err != nil {
			return err
		}
		if line == "" {
			return nil
		}
		if total += len(line) + 2; total > b.maxTrail {
			return errTrailerLarge
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errMalformedChunk
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !validFieldName(name) {
			return errMalformedChunk
		}
		value = trimOWS(value)
		if !validFieldValue(value) {
			return errMalformedChunk
		}
		key := canonicalKey(name)
		switch key {
		case "Content-Length", "Transfer-Encoding", "Host", "Trailer", "Connection", "Te", "Expect":
			continue
		}
		if b.req != nil {
			if b.req.Trailer == nil {
				b.req.Trailer = http.Header{}
			}
			b.req.Trailer[key] = append(b.req.Trailer[key], value)
		}
	}
}
