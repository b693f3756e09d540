package h1

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/wire"
	"golang.org/x/net/http/httpguts"
)

// RequestError is a request refused before it reached the handler: the head was malformed,
// too large, or framed ambiguously. Status is the HTTP status to answer with, Code a stable
// machine-readable code and Reason a message safe to show the client.
type RequestError struct {
	Status int
	Code   string
	Reason string
	// Smuggling marks framing that a proxy chain could read two ways (Content-Length with
	// Transfer-Encoding, several Transfer-Encodings, Transfer-Encoding on HTTP/1.0).
	Smuggling bool
}

func (e *RequestError) Error() string { return "h1: " + e.Reason }

func badRequest(reason string) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Code: "bad_request", Reason: reason}
}

func smuggling(reason string) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Code: "request_smuggling", Reason: reason, Smuggling: true}
}

var (
	errHeadTooLarge = &RequestError{Status: http.StatusRequestHeaderFieldsTooLarge,
		Code: "request_header_fields_too_large", Reason: "request headers are too large"}
	errBareLF = badRequest("malformed request head: a line ends in a bare LF")
)

// head is one parsed request head. Every string in it is a slice of raw, the head's bytes
// converted to a string once, so parsing costs one allocation for all names and values.
type head struct {
	raw        string
	method     string
	target     string
	protoMinor int // 0 or 1 (HTTP/1.0, HTTP/1.1)
	header     http.Header
}

// readHead reads one request head (request line, fields, empty line) from br into buf, which
// it returns grown for reuse. Every line must end in CRLF; a few empty lines before the request
// line (RFC 9112 §2.2) are skipped. The head may not exceed max bytes.
func readHead(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	buf = buf[:0]
	lineStart, skipped := 0, 0
	for {
		line, err := br.ReadSlice('\n')
		if len(buf)+len(line) > max {
			return buf, errHeadTooLarge
		}
		buf = append(buf, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(buf) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
		n := len(buf)
		if n-lineStart < 2 || buf[n-2] != '\r' {
			return buf, errBareLF
		}
		if n-lineStart == 2 { // an empty line
			if lineStart > 0 {
				return buf, nil
			}
			if skipped++; skipped > 4 {
				return buf, badRequest("malformed request head: empty lines before the request line")
			}
			buf = buf[:0]
			continue
		}
		lineStart = n
	}
}

// parseHead parses a complete head (as returned by readHead). raw must be string(buf). The
// head is returned by value: it stays on the caller's stack.
func parseHead(raw string) (head, *RequestError) {
	h := head{raw: raw}
	lineEnd := strings.Index(raw, "\r\n")
	if lineEnd < 0 {
		return head{}, badRequest("malformed request line")
	}
	if err := h.parseRequestLine(raw[:lineEnd]); err != nil {
		return head{}, err
	}
	header, ferr := wire.ParseFields(raw[lineEnd+2:])
	switch ferr {
	case wire.FieldFolded:
		return head{}, badRequest("malformed request head: obsolete line folding")
	case wire.FieldNoName:
		return head{}, badRequest("malformed request head: a header line has no name")
	case wire.FieldBadName:
		return head{}, badRequest("malformed request head: invalid header name")
	case wire.FieldBadValue:
		return head{}, badRequest("malformed request head: invalid header value")
	}
	h.header = header
	return h, nil
}

// parseRequestLine splits "METHOD SP target SP HTTP/1.x".
func (h *head) parseRequestLine(line string) *RequestError {
	sp1 := strings.IndexByte(line, ' ')
	if sp1 <= 0 {
		return badRequest("malformed request line")
	}
	sp2 := strings.IndexByte(line[sp1+1:], ' ')
	if sp2 <= 0 {
		return badRequest("malformed request line")
	}
	sp2 += sp1 + 1
	h.method, h.target = line[:sp1], line[sp1+1:sp2]
	proto := line[sp2+1:]
	if !wire.ValidFieldName(h.method) {
		return badRequest("malformed request line: invalid method")
	}
	for i := 0; i < len(h.target); i++ {
		if c := h.target[i]; c <= ' ' || c == 0x7f {
			return badRequest("malformed request line: invalid request target")
		}
	}
	switch proto {
	case "HTTP/1.1":
		h.protoMinor = 1
	case "HTTP/1.0":
		h.protoMinor = 0
	default:
		if len(proto) == 8 && strings.HasPrefix(proto, "HTTP/") && proto[6] == '.' &&
			proto[5] >= '2' && proto[5] <= '9' && proto[7] >= '0' && proto[7] <= '9' {
			return &RequestError{Status: http.StatusHTTPVersionNotSupported, Code: "http_version_not_supported",
				Reason: "this listener speaks HTTP/1.0 and HTTP/1.1"}
		}
		return badRequest("malformed request line: invalid protocol version")
	}
	return nil
}

// framing is how a request's body is delimited.
type framing struct {
	length  int64 // -1: chunked
	chunked bool
}

// requestFraming applies RFC 9112 §6 strictly: Content-Length together with
// Transfer-Encoding, several Transfer-Encoding lines, Transfer-Encoding on HTTP/1.0 and
// Content-Length values that are malformed or disagree are all refused rather than resolved.
func requestFraming(h *head) (framing, *RequestError) {
	te, hasTE := h.header["Transfer-Encoding"]
	cl, hasCL := h.header["Content-Length"]
	switch {
	case hasTE && hasCL:
		return framing{}, smuggling("both Content-Length and Transfer-Encoding")
	case hasTE && len(te) > 1:
		return framing{}, smuggling("several Transfer-Encoding headers")
	case hasTE && h.protoMinor == 0:
		return framing{}, smuggling("Transfer-Encoding on HTTP/1.0")
	case hasTE:
		if !wire.EqualFold(te[0], "chunked") {
			return framing{}, &RequestError{Status: http.StatusNotImplemented, Code: "not_implemented",
				Reason: "unsupported transfer encoding"}
		}
		// A trailer that would frame the message is refused up front, as net/http does (the
		// body reader drops such trailer fields anyway).
		for _, d := range h.header["Trailer"] {
			for d != "" {
				var k string
				k, d, _ = strings.Cut(d, ",")
				switch wire.CanonicalKey(wire.TrimOWS(k)) {
				case "Content-Length", "Transfer-Encoding", "Trailer":
					return framing{}, badRequest("malformed Trailer header: a framing field is declared")
				}
			}
		}
		return framing{length: -1, chunked: true}, nil
	case hasCL:
		n, ok := wire.ParseContentLength(cl[0])
		if !ok {
			return framing{}, badRequest("malformed Content-Length")
		}
		for _, v := range cl[1:] {
			if v != cl[0] {
				return framing{}, smuggling("conflicting Content-Length headers")
			}
		}
		return framing{length: n}, nil
	}
	return framing{}, nil
}

// requestURL parses the request target into u the way net/http does: origin-form,
// absolute-form, "*" (OPTIONS) and authority-form (CONNECT only).
func requestURL(method, target string, u *url.URL) *RequestError {
	if parseOrigin(target, u) {
		return nil
	}
	if method == http.MethodConnect && !strings.HasPrefix(target, "/") {
		// authority-form: parsed as net/http parses it (a valid Host header is not enough:
		// "a:b:c" or "[::1" are not authorities).
		if target == "" || !httpguts.ValidHostHeader(target) {
			return badRequest("malformed request line: invalid CONNECT target")
		}
		p, err := url.ParseRequestURI("http://" + target)
		if err != nil || p.Host != target {
			return badRequest("malformed request line: invalid CONNECT target")
		}
		*u = *p
		u.Scheme = ""
		return nil
	}
	p, err := url.ParseRequestURI(target)
	if err != nil {
		return badRequest("malformed request line: invalid request target")
	}
	*u = *p
	return nil
}

// requestHost checks the Host header (exactly one on HTTP/1.1, at most one on HTTP/1.0, a valid
// host when present) and returns the request's host: the target's authority in absolute form
// (RFC 9112 §3.2.2), else the Host header.
func requestHost(h *head, u *url.URL) (string, *RequestError) {
	hosts := h.header["Host"]
	var host string
	switch {
	case len(hosts) > 1:
		return "", badRequest("several Host headers")
	case len(hosts) == 0 && h.protoMinor == 1:
		return "", badRequest("missing Host header")
	case len(hosts) == 1:
		if !validHost(hosts[0]) {
			return "", badRequest("malformed Host header")
		}
		host = hosts[0]
	}
	if u.Host != "" {
		host = u.Host
	}
	return host, nil
}

// declaredTrailers returns the trailer fields a Trailer header declares, as the keys of a
// header with nil values (what http.Request.Trailer holds before the body is read).
func declaredTrailers(decl []string) http.Header {
	if len(decl) == 0 {
		return nil
	}
	t := http.Header{}
	for _, d := range decl {
		for d != "" {
			var k string
			k, d, _ = strings.Cut(d, ",")
			if k = wire.TrimOWS(k); k != "" && wire.ValidFieldName(k) {
				t[wire.CanonicalKey(k)] = nil
			}
		}
	}
	return t
}

// statusLine returns "HTTP/1.1 <code> <text>\r\n".
func statusLine(code int) string {
	if code >= 100 && code < 600 {
		if s := statusLines[code]; s != "" {
			return s
		}
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + statusText(code) + "\r\n"
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "status code " + strconv.Itoa(code)
}

var statusLines = func() [600]string {
	var a [600]string
	for c := 100; c < 600; c++ {
		if t := http.StatusText(c); t != "" {
			a[c] = "HTTP/1.1 " + strconv.Itoa(c) + " " + t + "\r\n"
		}
	}
	return a
}()

// parseOrigin fills u as url.ParseRequestURI would from an origin-form target ("/path" or
// "/path?query") whose path has only bytes that are never escaped in a path (so Path is the
// path as sent and RawPath stays empty) and whose query has no control byte. It reports false,
// leaving u alone, for any other target: ParseRequestURI then decides.
func parseOrigin(target string, u *url.URL) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !pathByte[path[i]] {
			return false
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	// As net/url, a "?" that ends the target is kept as ForceQuery.
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// pathByte holds the bytes that net/url never escapes in a path: letters, digits and
// "-_.~$&+,/:;=@".
var pathByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()
