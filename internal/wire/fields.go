package wire

import (
	"bufio"
	"io"
	"net/http"
	"strings"
)

// FieldError says what is wrong with a field line (see ParseFields).
type FieldError int

// The field-line faults ParseFields reports.
const (
	FieldOK       FieldError = iota
	FieldFolded              // a line starts with whitespace (obsolete line folding)
	FieldNoName              // no colon, or nothing before it
	FieldBadName             // the name is not a token
	FieldBadValue            // the value holds a control character
)

// ParseFields parses a field block: lines each ended by CRLF, up to and including the empty
// line that ends the head (the text after the start line of a head as read off the wire). The
// values are slices of block; the header map and one backing array for the values are allocated
// once, sized by the number of lines, and keys are canonical.
func ParseFields(block string) (http.Header, FieldError) {
	if block != "\r\n" && !strings.HasSuffix(block, "\r\n\r\n") {
		return nil, FieldNoName // not ended by the empty line
	}
	// Counting LFs (a vectorized count of one byte; CRLF would be searched for one at a time)
	// gives at least the number of lines: an LF without its CR is rejected below anyway.
	n := strings.Count(block, "\n") - 1
	h := make(http.Header, n)
	vals := make([]string, n)
	i := 0
	for {
		e := strings.Index(block, "\r\n")
		line := block[:e]
		block = block[e+2:]
		if line == "" {
			return h, FieldOK
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, FieldFolded
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return nil, FieldNoName
		}
		key, ok := FieldKey(line[:colon])
		if !ok {
			return nil, FieldBadName
		}
		value := TrimOWS(line[colon+1:])
		if !ValidFieldValue(value) {
			return nil, FieldBadValue
		}
		if old, ok := h[key]; ok {
			h[key] = append(old, value)
		} else {
			vals[i] = value
			h[key] = vals[i : i+1 : i+1]
		}
		i++
	}
}

// ReadFixed reads the next part of a body of *remain bytes from src and counts it off; it
// returns io.EOF together with the last bytes, and io.ErrUnexpectedEOF when src ends early.
func ReadFixed(src *bufio.Reader, p []byte, remain *int64) (int, error) {
	if *remain <= 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > *remain {
		p = p[:*remain]
	}
	n, err := src.Read(p)
	*remain -= int64(n)
	if *remain == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
