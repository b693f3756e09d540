package wire

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
)

var (
	// ErrMalformedChunk is a chunked body that breaks RFC 9112 §7.1: a bad size line, data
	// longer than its size, a line not ended by CRLF, or a malformed trailer field.
	ErrMalformedChunk = errors.New("malformed chunked body")
	// ErrTrailerTooLarge is a trailer section over ChunkedReader.MaxTrailer bytes.
	ErrTrailerTooLarge = errors.New("chunked body trailers too large")
)

// ChunkedReader decodes the chunked transfer coding from Src, strictly: every line ends in CRLF,
// sizes are 1 to 15 hex digits, and lines longer than Src's buffer are refused. After the last
// chunk it reads the trailer section into *Trailer (when Trailer is not nil), dropping fields
// that would change how the message is framed or routed (RFC 9110 §6.5.1), then returns io.EOF.
type ChunkedReader struct {
	Src *bufio.Reader
	// MaxTrailer bounds the trailer section in bytes.
	MaxTrailer int
	// Trailer, when not nil, receives the trailer fields (the map is created if needed).
	Trailer *http.Header
	// DeclaredOnly keeps only the trailer fields *Trailer already has as keys: those a Trailer
	// header declared and no policy removed since. A server sets it, so that a request
	// trailer cannot bring a field its header was cleaned of (an identity header, say).
	DeclaredOnly bool

	remain int64 // bytes left in the current chunk
	state  int
	err    error // the first error, returned by every later Read
}

const (
	chunkSize = iota
	chunkData
	chunkDataCRLF
	chunkDone
)

// Read implements io.Reader. After an error every call returns that error again.
func (r *ChunkedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

func (r *ChunkedReader) read(p []byte) (int, error) {
	for {
		switch r.state {
		case chunkSize:
			line, err := r.line()
			if err != nil {
				return 0, err
			}
			size, ok := ParseChunkSize(line)
			if !ok {
				return 0, ErrMalformedChunk
			}
			if size == 0 {
				if err := r.readTrailers(); err != nil {
					return 0, err
				}
				r.state = chunkDone
				return 0, io.EOF
			}
			r.remain, r.state = size, chunkData
		case chunkData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > r.remain {
				p = p[:r.remain]
			}
			n, err := r.Src.Read(p)
			r.remain -= int64(n)
			if r.remain == 0 {
				r.state = chunkDataCRLF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		case chunkDataCRLF:
			cr, err := r.Src.ReadByte()
			if err != nil {
				return 0, unexpected(err)
			}
			lf, err := r.Src.ReadByte()
			if err != nil {
				return 0, unexpected(err)
			}
			if cr != '\r' || lf != '\n' {
				return 0, ErrMalformedChunk
			}
			r.state = chunkSize
		default:
			return 0, io.EOF
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// line reads one CRLF-terminated line (a size line or a trailer field), without the CRLF.
func (r *ChunkedReader) line() (string, error) {
	l, err := r.Src.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return "", ErrMalformedChunk
	case err != nil:
		return "", unexpected(err)
	case len(l) < 2 || l[len(l)-2] != '\r':
		return "", ErrMalformedChunk
	}
	return string(l[:len(l)-2]), nil
}

// ParseChunkSize reads "hex-size [ *(BWS ';' ext) ]". At most 15 hex digits (no overflow).
func ParseChunkSize(line string) (int64, bool) {
	size := line
	if i := strings.IndexByte(line, ';'); i >= 0 {
		size = strings.TrimRight(line[:i], " \t")
		if !ValidFieldValue(line[i:]) {
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

// readTrailers reads the trailer section after the last chunk. Its fields reach *Trailer only
// once the whole section has been read and found valid.
func (r *ChunkedReader) readTrailers() error {
	total := 0
	var fields []string // key, value, key, value...
	for {
		line, err := r.line()
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		if total += len(line) + 2; total > r.MaxTrailer {
			return ErrTrailerTooLarge
		}
		if line[0] == ' ' || line[0] == '\t' {
			return ErrMalformedChunk
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !ValidFieldName(name) {
			return ErrMalformedChunk
		}
		value = TrimOWS(value)
		if !ValidFieldValue(value) {
			return ErrMalformedChunk
		}
		key := CanonicalKey(name)
		switch key {
		case "Content-Length", "Transfer-Encoding", "Host", "Trailer", "Connection", "Te", "Expect":
			continue
		}
		fields = append(fields, key, value)
	}
	if r.Trailer == nil || len(fields) == 0 || r.DeclaredOnly && *r.Trailer == nil {
		return nil
	}
	if *r.Trailer == nil {
		*r.Trailer = http.Header{}
	}
	for i := 0; i < len(fields); i += 2 {
		if _, declared := (*r.Trailer)[fields[i]]; r.DeclaredOnly && !declared {
			continue
		}
		(*r.Trailer)[fields[i]] = append((*r.Trailer)[fields[i]], fields[i+1])
	}
	return nil
}
