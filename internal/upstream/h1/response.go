package h1

import (
	"bufio"
	"io"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse/internal/wire"
)

// exchangeState is what one response needs, allocated together: the Response handed to the
// caller and the reader of its body.
type exchangeState struct {
	resp http.Response
	body bodyReader
}

// responseError is a response head that breaks RFC 9112, or frames its body ambiguously.
type responseError string

func (e responseError) Error() string { return "malformed response: " + string(e) }

// chunkedTE is Response.TransferEncoding for a chunked response (read-only, like a constant).
var chunkedTE = []string{"chunked"}

// readHead reads one response head into c.head: the status line and the field lines, each
// stored with a CRLF ending, up to the empty line. A bare LF ends a line as well (RFC 9112 §2.2
// allows a recipient to accept it; the head is re-serialized before anything is forwarded), and
// an obsolete line folding is replaced by a space (RFC 9112 §5.2). Its size is bounded by the
// connection's head budget.
func (c *conn) readHead() error {
	buf := c.head[:0]
	lineStart, statusEnd := 0, 0
	for {
		part, err := c.br.ReadSlice('\n')
		buf = append(buf, part...)
		if err == bufio.ErrBufferFull {
			continue // a line longer than the reader's buffer: keep reading it
		}
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			c.keepHead(buf)
			return err
		}
		// buf[lineStart:] is one line ending in LF: strip the LF or CRLF, store CRLF.
		end := len(buf) - 1
		if end > lineStart && buf[end-1] == '\r' {
			end--
		}
		buf = buf[:end]
		if end == lineStart { // the empty line
			if lineStart == 0 {
				c.keepHead(buf)
				return responseError("empty status line")
			}
			c.head = append(buf, '\r', '\n')
			return nil
		}
		if b := buf[lineStart]; b == ' ' || b == '\t' {
			if lineStart == statusEnd {
				c.keepHead(buf)
				return responseError("whitespace at the start of a line")
			}
			// obs-fold (OWS CRLF RWS): the whitespace around the previous line's CRLF and the
			// CRLF become one SP.
			folded := trimLeftOWS(buf[lineStart:])
			p := lineStart - 2
			for p > statusEnd && (buf[p-1] == ' ' || buf[p-1] == '\t') {
				p--
			}
			buf[p] = ' '
			buf = buf[:p+1+copy(buf[p+1:], folded)]
		}
		buf = append(buf, '\r', '\n')
		if statusEnd == 0 {
			statusEnd = len(buf)
		}
		lineStart = len(buf)
	}
}

// keepHead stores buf for reuse by the next response, unless a rare huge head grew it (the
// caller of a successful readHead does the same once it has converted the head).
func (c *conn) keepHead(buf []byte) {
	if cap(buf) > 64<<10 {
		buf = nil
	}
	c.head = buf
}

func trimLeftOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// parseResponse parses the head read by readHead into st.resp, for req. Every string in the
// Response is a slice of one conversion of the head, and the header map and its value slices are
// allocated once, sized by the number of field lines.
func parseResponse(st *exchangeState, raw string, req *http.Request) error {
	resp := &st.resp
	lineEnd := strings.Index(raw, "\r\n")
	line := raw[:lineEnd]
	// "HTTP/1.x SP 3DIGIT [SP reason-phrase]"
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' {
		return responseError("malformed status line")
	}
	switch line[7] {
	case '0':
		resp.Proto, resp.ProtoMinor = "HTTP/1.0", 0
	case '1':
		resp.Proto, resp.ProtoMinor = "HTTP/1.1", 1
	default:
		return responseError("unsupported protocol version")
	}
	resp.ProtoMajor = 1
	code := 0
	for i := 9; i < 12; i++ {
		d := line[i]
		if d < '0' || d > '9' {
			return responseError("malformed status code")
		}
		code = code*10 + int(d-'0')
	}
	if code < 100 || len(line) > 12 && line[12] != ' ' {
		return responseError("malformed status code")
	}
	if !wire.ValidFieldValue(line[12:]) {
		return responseError("malformed reason phrase")
	}
	resp.StatusCode = code
	resp.Status = line[9:]
	resp.Request = req

	// readHead has unfolded folded lines, so a fold here cannot happen.
	h, ferr := wire.ParseFields(raw[lineEnd+2:])
	switch ferr {
	case wire.FieldOK:
	case wire.FieldBadValue:
		return responseError("invalid header field value")
	default:
		return responseError("invalid header field name")
	}
	resp.Header = h
	return nil
}

// Body framing modes of a response (RFC 9112 §6.3).
const (
	bodyNone    = iota // no body: HEAD, 1xx, 204, 304, Content-Length: 0
	bodyFixed          // Content-Length bytes
	bodyChunked        // the chunked transfer coding
	bodyToClose        // delimited by the connection's close
)

// frame decides how st.resp's body is delimited and whether the connection can be kept, as
// net/http does, with two differences that close request-smuggling and response-splitting
// doors (as Envoy and nginx do): a response with both Content-Length and Transfer-Encoding, and
// Transfer-Encoding on HTTP/1.0, are errors rather than resolved in favour of one of them.
func frame(resp *http.Response, method string) (mode int, err error) {
	h := resp.Header
	conn := h["Connection"]
	if resp.ProtoMinor == 0 {
		resp.Close = !wire.HasToken(conn, "keep-alive") || wire.HasToken(conn, "close")
	} else if wire.HasToken(conn, "close") {
		// Unlike net/http the Connection field stays: the proxy removes it together with the
		// fields it names (RFC 9110 §7.6.1), which deleting it here would hide.
		resp.Close = true
	}
	te, hasTE := h["Transfer-Encoding"]
	cl, hasCL := h["Content-Length"]
	var length int64 = -1
	switch {
	case hasTE && hasCL:
		return 0, responseError("both Content-Length and Transfer-Encoding")
	case hasTE && resp.ProtoMinor == 0:
		return 0, responseError("Transfer-Encoding on HTTP/1.0")
	case hasTE && (len(te) != 1 || !wire.EqualFold(te[0], "chunked")):
		return 0, responseError("unsupported Transfer-Encoding")
	case hasCL:
		var ok bool
		if length, ok = wire.ParseContentLength(cl[0]); !ok {
			return 0, responseError("invalid Content-Length")
		}
		for _, v := range cl[1:] {
			if v != cl[0] {
				return 0, responseError("conflicting Content-Length headers")
			}
		}
		if len(cl) > 1 {
			h["Content-Length"] = cl[:1]
		}
	}
	if hasTE {
		delete(h, "Transfer-Encoding")
		resp.TransferEncoding = chunkedTE
		if err := declareTrailers(resp); err != nil {
			return 0, err
		}
	}
	code := resp.StatusCode
	switch {
	case method == http.MethodHead:
		resp.ContentLength = length
		if hasTE {
			resp.ContentLength = -1
		}
		return bodyNone, nil
	case code < 200 || code == http.StatusNoContent || code == http.StatusNotModified:
		resp.ContentLength = 0
		return bodyNone, nil
	case hasTE:
		resp.ContentLength = -1
		return bodyChunked, nil
	case hasCL:
		resp.ContentLength = length
		if length == 0 {
			return bodyNone, nil
		}
		return bodyFixed, nil
	}
	resp.ContentLength = -1
	resp.Close = true
	return bodyToClose, nil
}

// declareTrailers moves the Trailer header of a chunked response into resp.Trailer (keys with
// nil values until the body's end fills them), refusing framing fields, as net/http does.
func declareTrailers(resp *http.Response) error {
	decl, ok := resp.Header["Trailer"]
	if !ok {
		return nil
	}
	delete(resp.Header, "Trailer")
	var t http.Header
	for _, d := range decl {
		for d != "" {
			var k string
			k, d, _ = strings.Cut(d, ",")
			if k = wire.TrimOWS(k); k == "" {
				continue
			}
			if !wire.ValidFieldName(k) {
				return responseError("invalid Trailer header")
			}
			switch k = wire.CanonicalKey(k); k {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return responseError("Trailer declares a framing field")
			}
			if t == nil {
				t = http.Header{}
			}
			t[k] = nil
		}
	}
	resp.Trailer = t
	return nil
}
