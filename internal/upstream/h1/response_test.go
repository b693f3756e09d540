package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/wire"
)

// parsed is one response head parsed as exchange parses it.
type parsed struct {
	resp *http.Response
	mode int
	br   *bufio.Reader // positioned after the head
}

// parseHead runs readHead, parseResponse and frame on raw, the bytes a target sent in answer to
// a request with method. readHead only uses c.br and c.head, so the conn needs no network
// connection: its reader reads raw directly (conn.Read and its head budget are bypassed).
func parseHead(raw, method string) (parsed, error) {
	c := &conn{br: bufio.NewReaderSize(strings.NewReader(raw), 4<<10), headBudget: -1}
	req := &http.Request{Method: method, Header: http.Header{}}
	st := new(exchangeState)
	if err := c.readHead(); err != nil {
		return parsed{}, err
	}
	if err := parseResponse(st, string(c.head), req); err != nil {
		return parsed{}, err
	}
	mode, err := frame(&st.resp, method)
	if err != nil {
		return parsed{}, err
	}
	return parsed{resp: &st.resp, mode: mode, br: c.br}, nil
}

// stdParse parses raw with net/http.ReadResponse, for comparison.
func stdParse(raw, method string) (*http.Response, error) {
	req := &http.Request{Method: method, Header: http.Header{}}
	return http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), req)
}

func isResponseError(err error) bool {
	var re responseError
	return errors.As(err, &re)
}

func modeName(m int) string {
	switch m {
	case bodyNone:
		return "none"
	case bodyFixed:
		return "fixed"
	case bodyChunked:
		return "chunked"
	case bodyToClose:
		return "to-close"
	}
	return fmt.Sprintf("mode(%d)", m)
}

func TestStatusLineAccepted(t *testing.T) {
	tests := []struct {
		line         string
		status       string
		code         int
		proto        string
		major, minor int
	}{
		{"HTTP/1.1 200 OK", "200 OK", 200, "HTTP/1.1", 1, 1},
		{"HTTP/1.1 200", "200", 200, "HTTP/1.1", 1, 1},
		{"HTTP/1.1 200 ", "200 ", 200, "HTTP/1.1", 1, 1},
		{"HTTP/1.0 404 Not Found", "404 Not Found", 404, "HTTP/1.0", 1, 0},
		{"HTTP/1.1 418 I'm a teapot", "418 I'm a teapot", 418, "HTTP/1.1", 1, 1},
		{"HTTP/1.1 299 Custom  Reason\twith tab", "299 Custom  Reason\twith tab", 299, "HTTP/1.1", 1, 1},
		{"HTTP/1.1 503 Indisponible \xc3\xa9t\xc3\xa9", "503 Indisponible \xc3\xa9t\xc3\xa9", 503, "HTTP/1.1", 1, 1},
		{"HTTP/1.1 100 Continue", "100 Continue", 100, "HTTP/1.1", 1, 1},
		{"HTTP/1.1 999 Highest", "999 Highest", 999, "HTTP/1.1", 1, 1},
		{"HTTP/1.0 200 OK", "200 OK", 200, "HTTP/1.0", 1, 0},
	}
	for _, tc := range tests {
		for _, eol := range []string{"\r\n", "\n"} {
			raw := tc.line + eol + "Content-Length: 0" + eol + eol
			p, err := parseHead(raw, http.MethodGet)
			if err != nil {
				t.Errorf("%q: %v", raw, err)
				continue
			}
			r := p.resp
			if r.Status != tc.status || r.StatusCode != tc.code || r.Proto != tc.proto || r.ProtoMajor != tc.major || r.ProtoMinor != tc.minor {
				t.Errorf("%q: got %q %d %q %d.%d, want %q %d %q %d.%d", raw, r.Status, r.StatusCode, r.Proto, r.ProtoMajor, r.ProtoMinor,
					tc.status, tc.code, tc.proto, tc.major, tc.minor)
			}
			std, err := stdParse(raw, http.MethodGet)
			if err != nil {
				t.Errorf("%q: net/http rejects it: %v", raw, err)
				continue
			}
			if r.Status != std.Status || r.StatusCode != std.StatusCode || r.Proto != std.Proto || r.ProtoMajor != std.ProtoMajor || r.ProtoMinor != std.ProtoMinor {
				t.Errorf("%q: got %q %d %q %d.%d, net/http %q %d %q %d.%d", raw, r.Status, r.StatusCode, r.Proto, r.ProtoMajor, r.ProtoMinor,
					std.Status, std.StatusCode, std.Proto, std.ProtoMajor, std.ProtoMinor)
			}
		}
	}
}

func TestStatusLineRejected(t *testing.T) {
	for _, line := range []string{
		"HTTP/2.0 200 OK",
		"HTTP/2 200 OK",
		"HTTP/1.2 200 OK",
		"HTTP/1.10 200 OK",
		"HTTP/0.9 200 OK",
		"http/1.1 200 OK",
		"HTTP/1.1 20 OK",
		"HTTP/1.1 2000 OK",
		"HTTP/1.1 20x OK",
		"HTTP/1.1 +20 OK",
		"HTTP/1.1 abc",
		"HTTP/1.1 abc OK",
		"HTTP/1.1  200 OK", // two spaces (net/http tolerates them)
		"HTTP/1.1 200\tOK",
		"HTTP/1.1\t200 OK",
		"HTTP/1.1",
		"HTTP/1.1 ",
		"ICY 200 OK",
		"200 OK",
		"",
		"HTTP/1.1 200 O\x00K",
		"HTTP/1.1 200 O\x01K",
		"HTTP/1.1 200 OK\x1b",
		"HTTP/1.1 200 OK\x7f",
		"HTTP/1.1 200 O\rK",
		"HTTP/1.1 099 Too Low",
		"HTTP/1.1 000 Zero",
		"HTTP/1.1 010 Low",
		" HTTP/1.1 200 OK",
		"\tHTTP/1.1 200 OK",
	} {
		for _, eol := range []string{"\r\n", "\n"} {
			raw := line + eol + "Content-Length: 0" + eol + eol
			p, err := parseHead(raw, http.MethodGet)
			if err == nil {
				t.Errorf("%q accepted: %d %q", raw, p.resp.StatusCode, p.resp.Status)
				continue
			}
			if !isResponseError(err) {
				t.Errorf("%q: error %v (%T), want a responseError", raw, err, err)
			}
		}
	}
	// A CR before the CRLF that does not end the line.
	if _, err := parseHead("HTTP/1.1 200 OK\r\r\nContent-Length: 0\r\n\r\n", http.MethodGet); !isResponseError(err) {
		t.Errorf("CR CR LF: err = %v, want a responseError", err)
	}
	// An empty line where the status line belongs, then a status line: not skipped.
	if _, err := parseHead("\r\nHTTP/1.1 200 OK\r\n\r\n", http.MethodGet); !isResponseError(err) {
		t.Errorf("leading empty line: err = %v, want a responseError", err)
	}
}

func TestHeadEOF(t *testing.T) {
	if _, err := parseHead("", http.MethodGet); err != io.EOF {
		t.Errorf("no bytes: err = %v, want io.EOF", err)
	}
	for _, raw := range []string{
		"HTTP/1.1 200 OK",
		"HTTP/1.1 200 OK\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r",
	} {
		if _, err := parseHead(raw, http.MethodGet); err != io.ErrUnexpectedEOF {
			t.Errorf("%q: err = %v, want io.ErrUnexpectedEOF", raw, err)
		}
	}
}

func TestBareLFEqualsCRLF(t *testing.T) {
	const crlf = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: 1\r\nx-a: 2\r\nX-Empty:\r\nContent-Length: 3\r\n\r\nabc"
	variants := map[string]string{
		"bare LF": strings.ReplaceAll(crlf, "\r\n", "\n"),
		"mixed":   "HTTP/1.1 200 OK\nContent-Type: text/plain\r\nX-A: 1\nx-a: 2\r\nX-Empty:\nContent-Length: 3\r\n\nabc",
		"mixed2":  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\nX-A: 1\r\nx-a: 2\nX-Empty:\r\nContent-Length: 3\n\r\nabc",
	}
	want, err := parseHead(crlf, http.MethodGet)
	if err != nil {
		t.Fatal(err)
	}
	if got := want.resp.Header; !reflect.DeepEqual(got, http.Header{
		"Content-Type": {"text/plain"}, "X-A": {"1", "2"}, "X-Empty": {""}, "Content-Length": {"3"},
	}) {
		t.Fatalf("CRLF header %v", got)
	}
	for name, raw := range variants {
		p, err := parseHead(raw, http.MethodGet)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if p.resp.Status != want.resp.Status || !reflect.DeepEqual(p.resp.Header, want.resp.Header) ||
			p.resp.ContentLength != want.resp.ContentLength || p.mode != want.mode {
			t.Errorf("%s: %q %v CL %d %s, want %q %v CL %d %s", name, p.resp.Status, p.resp.Header, p.resp.ContentLength, modeName(p.mode),
				want.resp.Status, want.resp.Header, want.resp.ContentLength, modeName(want.mode))
		}
		if rest, _ := io.ReadAll(p.br); string(rest) != "abc" {
			t.Errorf("%s: bytes after the head %q, want the body", name, rest)
		}
		std, err := stdParse(raw, http.MethodGet)
		if err != nil {
			t.Errorf("%s: net/http: %v", name, err)
		} else if !reflect.DeepEqual(std.Header, p.resp.Header) {
			t.Errorf("%s: header %v, net/http %v", name, p.resp.Header, std.Header)
		}
	}
}

func TestObsFold(t *testing.T) {
	tests := []struct {
		name, fields string
		want         http.Header
	}{
		{"space", "X-Fold: a\r\n b\r\n", http.Header{"X-Fold": {"a b"}}},
		{"tab", "X-Fold: a\r\n\tb\r\n", http.Header{"X-Fold": {"a b"}}},
		{"runs of whitespace", "X-Fold: a\r\n  \t b\r\n", http.Header{"X-Fold": {"a b"}}},
		{"several", "X-Fold: a\r\n b\r\n\t c\r\nX-Next: n\r\n", http.Header{"X-Fold": {"a b c"}, "X-Next": {"n"}}},
		{"bare LF", "X-Fold: a\n b\nX-Next: n\n", http.Header{"X-Fold": {"a b"}, "X-Next": {"n"}}},
		{"empty first line", "X-Fold:\r\n b\r\n", http.Header{"X-Fold": {"b"}}},
		{"colon in the continuation", "X-Fold: a\r\n b: c\r\n", http.Header{"X-Fold": {"a b: c"}}},
		{"second field folded", "X-A: 1\r\nX-Fold: a\r\n b\r\n", http.Header{"X-A": {"1"}, "X-Fold": {"a b"}}},
		{"framing field folded", "Content-Length:\r\n 3\r\n", http.Header{"Content-Length": {"3"}}},
	}
	for _, tc := range tests {
		raw := "HTTP/1.1 200 OK\r\n" + tc.fields + "\r\n"
		if _, ok := tc.want["Content-Length"]; !ok {
			raw = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n" + tc.fields + "\r\n"
			tc.want["Content-Length"] = []string{"3"}
		}
		raw += "xyz"
		p, err := parseHead(raw, http.MethodGet)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(p.resp.Header, tc.want) {
			t.Errorf("%s: header %q, want %q", tc.name, p.resp.Header, tc.want)
		}
		if p.mode != bodyFixed || p.resp.ContentLength != 3 {
			t.Errorf("%s: %s CL %d, want fixed 3", tc.name, modeName(p.mode), p.resp.ContentLength)
		}
		if rest, _ := io.ReadAll(p.br); string(rest) != "xyz" {
			t.Errorf("%s: bytes after the head %q", tc.name, rest)
		}
		std, err := stdParse(raw, http.MethodGet)
		if err != nil {
			t.Errorf("%s: net/http: %v", tc.name, err)
		} else if !reflect.DeepEqual(std.Header, p.resp.Header) {
			t.Errorf("%s: header %q, net/http %q", tc.name, p.resp.Header, std.Header)
		}
	}
}

// TestObsFoldBlankContinuation: a continuation line of whitespace only adds nothing but the
// SP that replaces the fold, which the value's trailing OWS then drops (net/http keeps a trailing
// SP there, and so reads "chunked\r\n \r\n" as the unsupported coding "chunked ").
func TestObsFoldBlankContinuation(t *testing.T) {
	p, err := parseHead("HTTP/1.1 200 OK\r\nX-A: a\r\n \t \r\nTransfer-Encoding: Chunked\n  \n\n5\r\nhello\r\n0\r\n\r\n", http.MethodGet)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.resp.Header["X-A"]; !slices.Equal(got, []string{"a"}) {
		t.Errorf("X-A %q, want [a]", got)
	}
	if p.mode != bodyChunked || !slices.Equal(p.resp.TransferEncoding, []string{"chunked"}) {
		t.Errorf("%s TE %q, want chunked", modeName(p.mode), p.resp.TransferEncoding)
	}
}

func TestFoldAfterStatusLineRejected(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\n X-A: 1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\tX-A: 1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\n X-A: 1\n\n",
		"HTTP/1.1 200 OK\r\n \r\n\r\n",
	} {
		if _, err := parseHead(raw, http.MethodGet); !isResponseError(err) {
			t.Errorf("%q: err = %v, want a responseError", raw, err)
		}
		if _, err := stdParse(raw, http.MethodGet); err == nil {
			t.Errorf("%q: net/http accepts it (it should agree)", raw)
		}
	}
}

func TestInvalidFieldLines(t *testing.T) {
	for _, line := range []string{
		"X-A : 1",       // space before the colon (net/http accepts it, uncanonicalized)
		"X-A\t: 1",      // tab before the colon
		": 1",           // empty name (net/http skips the line)
		"X A: 1",        // space in the name
		"X(A): 1",       // separators
		"X\"A\": 1",     //
		"X@A: 1",        //
		"X[A]: 1",       //
		"X/A: 1",        //
		"X=A: 1",        //
		"X{A}: 1",       //
		"X,A: 1",        //
		"X\x00A: 1",     // NUL
		"X\x7fA: 1",     // DEL
		"X-\xc3\xa9: 1", // non-ASCII
		"NoColon",       //
		"X-A 1",         //
		"X-A: a\x00b",   // CTLs in the value
		"X-A: a\x01b",
		"X-A: a\x1bb",
		"X-A: a\x7fb",
		"X-A: a\rb", // a lone CR
		"X-A: \x0b",
		"X-A: a\x0cb",
		"X-A: ok\r\n b\x00", // CTL in a continuation line
		"\x00X-A: 1",
	} {
		raw := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + line + "\r\n\r\n"
		p, err := parseHead(raw, http.MethodGet)
		if err == nil {
			t.Errorf("%q accepted: %q", line, p.resp.Header)
			continue
		}
		if !isResponseError(err) {
			t.Errorf("%q: error %v, want a responseError", line, err)
		}
	}
}

func TestFieldValuesAndKeys(t *testing.T) {
	longName := "x-" + strings.Repeat("long-", 20) + "name"
	raw := "HTTP/1.1 200 OK\r\n" +
		"content-type: text/html\r\n" +
		"Set-Cookie: a=1\r\n" +
		"x-custom-HEADER: c\r\n" +
		"set-cookie: b=2\r\n" +
		"WWW-AUTHENTICATE: Basic\r\n" +
		"x_under_score: u\r\n" +
		"etag: \"e\"\r\n" +
		"SET-COOKIE: c=3\r\n" +
		"X-Ows: \t v  v \t \r\n" +
		"X-Empty:\r\n" +
		"X-Blank:   \t\r\n" +
		"X-Obs-Text: caf\xc3\xa9\r\n" +
		"X-Colons: a:b::c\r\n" +
		"X-Symbols: !#$%&'*+-.^_`|~\r\n" +
		longName + ": l\r\n" +
		"Content-Length: 0\r\n\r\n"
	p, err := parseHead(raw, http.MethodGet)
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{
		"Content-Type":     {"text/html"},
		"Set-Cookie":       {"a=1", "b=2", "c=3"},
		"X-Custom-Header":  {"c"},
		"Www-Authenticate": {"Basic"},
		"X_under_score":    {"u"},
		"Etag":             {"\"e\""},
		"X-Ows":            {"v  v"},
		"X-Empty":          {""},
		"X-Blank":          {""},
		"X-Obs-Text":       {"caf\xc3\xa9"},
		"X-Colons":         {"a:b::c"},
		"X-Symbols":        {"!#$%&'*+-.^_`|~"},
		textproto.CanonicalMIMEHeaderKey(longName): {"l"},
		"Content-Length": {"0"},
	}
	if !reflect.DeepEqual(p.resp.Header, want) {
		t.Fatalf("header\n%q\nwant\n%q", p.resp.Header, want)
	}
	for k := range p.resp.Header {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("key %q is not canonical (%q)", k, c)
		}
	}
	std, err := stdParse(raw, http.MethodGet)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(std.Header, p.resp.Header) {
		t.Errorf("header\n%q\nnet/http\n%q", p.resp.Header, std.Header)
	}
	// The value slices are allocated together: appending to one must not overwrite another.
	p.resp.Header.Add("X-Custom-Header", "added")
	p.resp.Header.Add("Content-Type", "added")
	if got := p.resp.Header["Set-Cookie"]; !slices.Equal(got, []string{"a=1", "b=2", "c=3"}) {
		t.Errorf("Set-Cookie after appending to other fields: %q", got)
	}
	if got := p.resp.Header["Www-Authenticate"]; !slices.Equal(got, []string{"Basic"}) {
		t.Errorf("Www-Authenticate after appending to other fields: %q", got)
	}
	if got := p.resp.Header["Etag"]; !slices.Equal(got, []string{"\"e\""}) {
		t.Errorf("Etag after appending to other fields: %q", got)
	}
}

// TestHeadBufferReused: the head buffer of a connection is reused from one response to the
// next; strings of an earlier response must not change.
func TestHeadBufferReused(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nX-A: first\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 404 Nope\r\nX-A: SECOND\r\nContent-Length: 0\r\n\r\n"
	c := &conn{br: bufio.NewReader(strings.NewReader(raw)), headBudget: -1}
	var resps []*http.Response
	for range 2 {
		st := new(exchangeState)
		if err := c.readHead(); err != nil {
			t.Fatal(err)
		}
		if err := parseResponse(st, string(c.head), nil); err != nil {
			t.Fatal(err)
		}
		c.keepHead(c.head)
		resps = append(resps, &st.resp)
	}
	if r := resps[0]; r.Status != "200 OK" || r.Header.Get("X-A") != "first" {
		t.Errorf("first response changed: %q %q", r.Status, r.Header)
	}
	if r := resps[1]; r.Status != "404 Nope" || r.Header.Get("X-A") != "SECOND" {
		t.Errorf("second response: %q %q", r.Status, r.Header)
	}
}

func TestFraming(t *testing.T) {
	const (
		ok11 = "HTTP/1.1 200 OK\r\n"
		ok10 = "HTTP/1.0 200 OK\r\n"
	)
	tests := []struct {
		name, raw, method string
		mode              int
		cl                int64
		close             bool
		te                []string
		trailer           []string // keys of resp.Trailer, sorted
		header            http.Header
	}{
		{name: "content-length", raw: ok11 + "Content-Length: 5\r\n\r\nhello", mode: bodyFixed, cl: 5,
			header: http.Header{"Content-Length": {"5"}}},
		{name: "content-length zero", raw: ok11 + "Content-Length: 0\r\n\r\n", mode: bodyNone, cl: 0},
		{name: "content-length leading zeros", raw: ok11 + "Content-Length: 007\r\n\r\n", mode: bodyFixed, cl: 7},
		{name: "content-length 18 digits", raw: ok11 + "Content-Length: 999999999999999999\r\n\r\n", mode: bodyFixed, cl: 999999999999999999},
		{name: "identical content-lengths", raw: ok11 + "Content-Length: 5\r\ncontent-length:  5 \r\n\r\nhello", mode: bodyFixed, cl: 5,
			header: http.Header{"Content-Length": {"5"}}},
		{name: "chunked", raw: ok11 + "Transfer-Encoding: chunked\r\nX-A: 1\r\n\r\n", mode: bodyChunked, cl: -1, te: []string{"chunked"},
			header: http.Header{"X-A": {"1"}}},
		{name: "chunked any case", raw: ok11 + "transfer-encoding: ChUnKeD \r\n\r\n", mode: bodyChunked, cl: -1, te: []string{"chunked"},
			header: http.Header{}},
		{name: "chunked with declared trailers", raw: ok11 + "Trailer: X-Sum, x-other\r\nTransfer-Encoding: chunked\r\nTrailer: ,X-Third,\r\n\r\n",
			mode: bodyChunked, cl: -1, te: []string{"chunked"}, trailer: []string{"X-Other", "X-Sum", "X-Third"}, header: http.Header{}},
		{name: "chunked with an empty Trailer", raw: ok11 + "Trailer: , \r\nTransfer-Encoding: chunked\r\n\r\n",
			mode: bodyChunked, cl: -1, te: []string{"chunked"}, header: http.Header{}},
		{name: "Trailer without chunked stays a header", raw: ok11 + "Trailer: X-Sum\r\nContent-Length: 0\r\n\r\n", mode: bodyNone, cl: 0,
			header: http.Header{"Trailer": {"X-Sum"}, "Content-Length": {"0"}}},
		{name: "close-delimited", raw: ok11 + "X-A: 1\r\n\r\nbody", mode: bodyToClose, cl: -1, close: true},
		{name: "1.0 without keep-alive", raw: ok10 + "Content-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2, close: true},
		{name: "1.0 keep-alive", raw: ok10 + "Connection: keep-alive\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2,
			header: http.Header{"Connection": {"keep-alive"}, "Content-Length": {"2"}}},
		{name: "1.0 keep-alive any case", raw: ok10 + "Connection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2},
		{name: "1.0 keep-alive close-delimited", raw: ok10 + "Connection: keep-alive\r\n\r\nbody", mode: bodyToClose, cl: -1, close: true},
		{name: "1.0 keep-alive and close", raw: ok10 + "Connection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2, close: true},
		{name: "1.0 keep-alive with a Kelvin sign", raw: ok10 + "Connection: \u212aeep-alive\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2, close: true},
		{name: "1.1 close with a Kelvin sign is no close", raw: ok11 + "Connection: \u212alose\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2},
		{name: "1.0 keep-alive in a list", raw: ok10 + "Connection: foo, keep-alive\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2},
		{name: "1.1 close", raw: ok11 + "Connection: close\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2, close: true,
			// Kept, unlike net/http: the proxy removes it with the fields it names.
			header: http.Header{"Connection": {"close"}, "Content-Length": {"2"}}},
		{name: "1.1 close in a list", raw: ok11 + "Connection: Keep-Alive, CLOSE\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2, close: true},
		{name: "1.1 keep-alive", raw: ok11 + "Connection: keep-alive\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2,
			header: http.Header{"Connection": {"keep-alive"}, "Content-Length": {"2"}}},
		{name: "1.1 close-token lookalike", raw: ok11 + "Connection: closed\r\nContent-Length: 2\r\n\r\nok", mode: bodyFixed, cl: 2},
		{name: "HEAD with content-length", method: http.MethodHead, raw: ok11 + "Content-Length: 10\r\n\r\n", mode: bodyNone, cl: 10},
		{name: "HEAD chunked", method: http.MethodHead, raw: ok11 + "Transfer-Encoding: chunked\r\n\r\n", mode: bodyNone, cl: -1, te: []string{"chunked"}},
		{name: "HEAD without framing", method: http.MethodHead, raw: ok11 + "\r\n", mode: bodyNone, cl: -1},
		{name: "204 with content-length", raw: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", mode: bodyNone, cl: 0},
		{name: "204 without framing", raw: "HTTP/1.1 204 No Content\r\n\r\n", mode: bodyNone, cl: 0},
		{name: "304 with content-length", raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", mode: bodyNone, cl: 0},
		{name: "304 chunked", raw: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", mode: bodyNone, cl: 0, te: []string{"chunked"}},
		{name: "103", raw: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", mode: bodyNone, cl: 0},
		{name: "100 with content-length", raw: "HTTP/1.1 100 Continue\r\nContent-Length: 10\r\n\r\n", mode: bodyNone, cl: 0},
		{name: "205 close-delimited", raw: "HTTP/1.1 205 Reset Content\r\n\r\n", mode: bodyToClose, cl: -1, close: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			p, err := parseHead(tc.raw, method)
			if err != nil {
				t.Fatal(err)
			}
			r := p.resp
			if p.mode != tc.mode || r.ContentLength != tc.cl || r.Close != tc.close || !slices.Equal(r.TransferEncoding, tc.te) {
				t.Errorf("%s CL %d close %v TE %q, want %s CL %d close %v TE %q", modeName(p.mode), r.ContentLength, r.Close, r.TransferEncoding,
					modeName(tc.mode), tc.cl, tc.close, tc.te)
			}
			if got := sortedKeys(r.Trailer); !slices.Equal(got, tc.trailer) {
				t.Errorf("trailer keys %q, want %q", got, tc.trailer)
			}
			for k, v := range r.Trailer {
				if v != nil {
					t.Errorf("declared trailer %s has a value %q before the body", k, v)
				}
			}
			if _, ok := r.Header["Transfer-Encoding"]; ok {
				t.Errorf("Transfer-Encoding left in the header: %q", r.Header)
			}
			if tc.header != nil && !reflect.DeepEqual(r.Header, tc.header) {
				t.Errorf("header %q, want %q", r.Header, tc.header)
			}
			// net/http decides the same framing.
			std, err := stdParse(tc.raw, method)
			if err != nil {
				t.Fatalf("net/http: %v", err)
			}
			if std.ContentLength != r.ContentLength || std.Close != r.Close || !slices.Equal(std.TransferEncoding, r.TransferEncoding) ||
				!slices.Equal(sortedKeys(std.Trailer), sortedKeys(r.Trailer)) {
				t.Errorf("CL %d close %v TE %q trailer %q; net/http CL %d close %v TE %q trailer %q",
					r.ContentLength, r.Close, r.TransferEncoding, sortedKeys(r.Trailer),
					std.ContentLength, std.Close, std.TransferEncoding, sortedKeys(std.Trailer))
			}
			// net/http deletes Connection when it says close; we keep it (see frame).
			if std.Close && r.Header["Connection"] != nil && std.Header["Connection"] == nil {
				std.Header["Connection"] = r.Header["Connection"]
			}
			if !reflect.DeepEqual(std.Header, r.Header) {
				t.Errorf("header %q, net/http %q", r.Header, std.Header)
			}
		})
	}
}

func TestFramingRejected(t *testing.T) {
	const ok11 = "HTTP/1.1 200 OK\r\n"
	tests := []struct{ name, raw, method string }{
		{"content-length and chunked", ok11 + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", ""},
		{"chunked and content-length", ok11 + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", ""},
		{"content-length and chunked on HEAD", ok11 + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", http.MethodHead},
		{"content-length and chunked on 204", "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", ""},
		{"chunked on HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", ""},
		{"gzip, chunked", ok11 + "Transfer-Encoding: gzip, chunked\r\n\r\n", ""},
		{"two Transfer-Encoding lines", ok11 + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", ""},
		{"chunked twice", ok11 + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ""},
		{"chunked, chunked", ok11 + "Transfer-Encoding: chunked, chunked\r\n\r\n", ""},
		{"identity", ok11 + "Transfer-Encoding: identity\r\n\r\n", ""},
		{"empty Transfer-Encoding", ok11 + "Transfer-Encoding:\r\n\r\n", ""},
		{"conflicting content-lengths", ok11 + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", ""},
		{"conflicting content-lengths on HEAD", ok11 + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", http.MethodHead},
		{"content-length -1", ok11 + "Content-Length: -1\r\n\r\n", ""},
		{"content-length 1e3", ok11 + "Content-Length: 1e3\r\n\r\n", ""},
		{"content-length ' 5 x'", ok11 + "Content-Length:  5 x\r\n\r\n", ""},
		{"content-length +5", ok11 + "Content-Length: +5\r\n\r\n", ""},
		{"content-length 0x5", ok11 + "Content-Length: 0x5\r\n\r\n", ""},
		{"content-length list", ok11 + "Content-Length: 5, 5\r\n\r\nhello", ""},
		{"content-length empty", ok11 + "Content-Length:\r\n\r\n", ""},
		{"content-length 19 digits", ok11 + "Content-Length: 1234567890123456789\r\n\r\n", ""},
		{"content-length 5 5", ok11 + "Content-Length: 5 5\r\n\r\n", ""},
		{"content-length on 204 invalid", "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", ""},
		{"trailer declares Content-Length", ok11 + "Transfer-Encoding: chunked\r\nTrailer: X-A, content-length\r\n\r\n", ""},
		{"trailer declares Transfer-Encoding", ok11 + "Transfer-Encoding: chunked\r\nTrailer: Transfer-Encoding\r\n\r\n", ""},
		{"trailer declares Trailer", ok11 + "Transfer-Encoding: chunked\r\nTrailer: trailer\r\n\r\n", ""},
		{"chunked with a Kelvin sign", ok11 + "Transfer-Encoding: chun\u212aed\r\n\r\n", ""},
		{"trailer declares an invalid name", ok11 + "Transfer-Encoding: chunked\r\nTrailer: X Bad\r\n\r\n", ""},
	}
	for _, tc := range tests {
		method := tc.method
		if method == "" {
			method = http.MethodGet
		}
		p, err := parseHead(tc.raw, method)
		if err == nil {
			t.Errorf("%s: accepted as %s CL %d", tc.name, modeName(p.mode), p.resp.ContentLength)
			continue
		}
		if !isResponseError(err) {
			t.Errorf("%s: error %v, want a responseError", tc.name, err)
		}
	}
}

func sortedKeys(h http.Header) []string {
	if len(h) == 0 {
		return nil
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// canned is a response a cannedServer sends; close has it close the connection afterwards.
type canned struct {
	raw   string
	close bool
}

// cannedServer answers each request with the canned response of its path and counts the
// connections it accepts. Connections stay open unless a response says to close.
func cannedServer(t *testing.T, resps map[string]canned) (string, *atomic.Int32) {
	t.Helper()
	accepts := new(atomic.Int32)
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		accepts.Add(1)
		for {
			r, err := readReq(br)
			if err != nil {
				return
			}
			cr, ok := resps[r.URL.Path]
			if !ok {
				cr = canned{raw: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"}
			}
			if _, err := io.WriteString(c, cr.raw); err != nil || cr.close {
				return
			}
		}
	})
	return url, accepts
}

func roundTrip(t *testing.T, tr *Transport, ctx context.Context, method, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr.RoundTrip(req)
}

// TestKeepAliveAfterEachFraming sends one request per kind of well-framed response, all on one
// connection: the Transport must read each response exactly to its end and reuse it.
func TestKeepAliveAfterEachFraming(t *testing.T) {
	bigValue := strings.Repeat("v", 8<<10)
	url, accepts := cannedServer(t, map[string]canned{
		"/cl":         {raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
		"/cl0":        {raw: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		"/dup-cl":     {raw: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
		"/chunked":    {raw: "HTTP/1.1 200 OK\r\nTrailer: X-Sum, X-Missing\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\nX-Extra: e\r\n\r\n"},
		"/undeclared": {raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Late: l\r\n\r\n"},
		"/no-trailer": {raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		"/head":       {raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"},
		"/204":        {raw: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"},
		"/304":        {raw: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nEtag: \"x\"\r\n\r\n"},
		"/10-ka":      {raw: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"},
		"/bare-lf":    {raw: "HTTP/1.1 201 Created\nX-A: 1\nContent-Length: 2\n\nok"},
		"/fold":       {raw: "HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok"},
		"/hints":      {raw: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		"/big-header": {raw: "HTTP/1.1 200 OK\r\nX-Big: " + bigValue + "\r\nContent-Length: 2\r\n\r\nok"},
		"/ka":         {raw: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
	})
	tr, fb := newTransport(t, Options{})
	tests := []struct {
		method, path string
		code         int
		body         string
		check        func(t *testing.T, resp *http.Response)
	}{
		{"GET", "/cl", 200, "hello", func(t *testing.T, r *http.Response) {
			if r.ContentLength != 5 {
				t.Errorf("ContentLength %d", r.ContentLength)
			}
		}},
		{"GET", "/cl0", 200, "", func(t *testing.T, r *http.Response) {
			if r.Body != http.NoBody || r.ContentLength != 0 {
				t.Errorf("Body %T, ContentLength %d; want http.NoBody, 0", r.Body, r.ContentLength)
			}
		}},
		{"GET", "/dup-cl", 200, "abc", func(t *testing.T, r *http.Response) {
			if got := r.Header["Content-Length"]; !slices.Equal(got, []string{"3"}) || r.ContentLength != 3 {
				t.Errorf("Content-Length %q, ContentLength %d", got, r.ContentLength)
			}
		}},
		{"GET", "/chunked", 200, "hello world", func(t *testing.T, r *http.Response) {
			want := http.Header{"X-Sum": {"42"}, "X-Missing": nil, "X-Extra": {"e"}}
			if !reflect.DeepEqual(r.Trailer, want) {
				t.Errorf("trailer after the body %q, want %q", r.Trailer, want)
			}
		}},
		{"GET", "/undeclared", 200, "abc", func(t *testing.T, r *http.Response) {
			if got := r.Trailer["X-Late"]; !slices.Equal(got, []string{"l"}) {
				t.Errorf("undeclared trailer %q (trailer %q)", got, r.Trailer)
			}
		}},
		{"GET", "/no-trailer", 200, "abc", func(t *testing.T, r *http.Response) {
			if len(r.Trailer) != 0 || !slices.Equal(r.TransferEncoding, []string{"chunked"}) {
				t.Errorf("trailer %q TE %q", r.Trailer, r.TransferEncoding)
			}
		}},
		{"HEAD", "/head", 200, "", func(t *testing.T, r *http.Response) {
			if r.ContentLength != 10 || r.Body != http.NoBody {
				t.Errorf("ContentLength %d Body %T, want 10 and http.NoBody", r.ContentLength, r.Body)
			}
		}},
		{"GET", "/cl", 200, "hello", nil}, // right after the HEAD
		{"GET", "/204", 204, "", func(t *testing.T, r *http.Response) {
			if r.ContentLength != 0 || r.Body != http.NoBody {
				t.Errorf("ContentLength %d Body %T", r.ContentLength, r.Body)
			}
		}},
		{"GET", "/304", 304, "", func(t *testing.T, r *http.Response) {
			if r.ContentLength != 0 || r.Body != http.NoBody || r.Header.Get("Etag") != `"x"` {
				t.Errorf("ContentLength %d Body %T header %q", r.ContentLength, r.Body, r.Header)
			}
		}},
		{"GET", "/10-ka", 200, "abc", func(t *testing.T, r *http.Response) {
			if r.Close || r.ProtoMinor != 0 || r.Proto != "HTTP/1.0" {
				t.Errorf("Close %v Proto %q", r.Close, r.Proto)
			}
		}},
		{"GET", "/bare-lf", 201, "ok", func(t *testing.T, r *http.Response) {
			if r.Status != "201 Created" || r.Header.Get("X-A") != "1" {
				t.Errorf("status %q header %q", r.Status, r.Header)
			}
		}},
		{"GET", "/fold", 200, "ok", func(t *testing.T, r *http.Response) {
			if got := r.Header["X-Fold"]; !slices.Equal(got, []string{"a b"}) {
				t.Errorf("folded value %q", got)
			}
		}},
		{"GET", "/hints", 200, "ok", func(t *testing.T, r *http.Response) {
			if _, ok := r.Header["Link"]; ok {
				t.Errorf("the 103's field leaked into the final response: %q", r.Header)
			}
		}},
		{"GET", "/big-header", 200, "ok", func(t *testing.T, r *http.Response) {
			if got := r.Header.Get("X-Big"); got != bigValue {
				t.Errorf("8 KiB value: got %d bytes", len(got))
			}
		}},
		{"GET", "/ka", 200, "ok", func(t *testing.T, r *http.Response) {
			if r.Close || r.Header.Get("Connection") != "keep-alive" {
				t.Errorf("Close %v Connection %q", r.Close, r.Header.Get("Connection"))
			}
		}},
	}
	for i, tc := range tests {
		resp, body := do(t, tr, tc.method, url+tc.path, nil)
		if resp.StatusCode != tc.code || body != tc.body {
			t.Errorf("%d %s %s: %d %q, want %d %q", i, tc.method, tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
		if tc.check != nil {
			t.Run(fmt.Sprintf("%d%s", i, tc.path), func(t *testing.T) { tc.check(t, resp) })
		}
		if st := tr.Stats(strings.TrimPrefix(url, "http://")); st.Idle != 1 || st.Open != 1 {
			t.Errorf("%d %s %s: stats %+v, want the connection idle for reuse", i, tc.method, tc.path, st)
		}
	}
	if n := accepts.Load(); n != 1 {
		t.Errorf("%d connections accepted for %d requests, want 1", n, len(tests))
	}
	if fb.n.Load() != 0 {
		t.Error("fallback used")
	}
}

// TestChunkedTrailersAfterEOF: declared trailers are keys without values until the body has
// been read to its end; the framing fields are gone from the header.
func TestChunkedTrailersAfterEOF(t *testing.T) {
	url, _ := cannedServer(t, map[string]canned{
		"/": {raw: "HTTP/1.1 200 OK\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n" +
			"4\r\nabcd\r\n0\r\nX-Checksum: c0ffee\r\nContent-Length: 99\r\n\r\n"},
	})
	tr, _ := newTransport(t, Options{})
	resp, err := roundTrip(t, tr, context.Background(), "GET", url+"/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || resp.ContentLength != -1 {
		t.Errorf("TE %q CL %d", resp.TransferEncoding, resp.ContentLength)
	}
	if want := (http.Header{"X-A": {"1"}}); !reflect.DeepEqual(resp.Header, want) {
		t.Errorf("header %q, want %q (no Trailer, no Transfer-Encoding)", resp.Header, want)
	}
	if v, ok := resp.Trailer["X-Checksum"]; !ok || v != nil {
		t.Errorf("before the body: trailer %q, want the declared key without a value", resp.Trailer)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "abcd" {
		t.Fatalf("body %q, %v", b, err)
	}
	if want := (http.Header{"X-Checksum": {"c0ffee"}}); !reflect.DeepEqual(resp.Trailer, want) {
		t.Errorf("after the body: trailer %q, want %q", resp.Trailer, want)
	}
}

func TestCloseDelimitedBody(t *testing.T) {
	url, accepts := cannedServer(t, map[string]canned{
		"/": {raw: "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nall of this until the close", close: true},
	})
	tr, _ := newTransport(t, Options{})
	for i := range 2 {
		resp, body := do(t, tr, "GET", url+"/", nil)
		if body != "all of this until the close" || !resp.Close || resp.ContentLength != -1 {
			t.Errorf("%d: body %q Close %v CL %d", i, body, resp.Close, resp.ContentLength)
		}
		if st := tr.Stats(strings.TrimPrefix(url, "http://")); st.Open != 0 || st.Idle != 0 {
			t.Errorf("%d: close-delimited connection kept: %+v", i, st)
		}
	}
	if n := accepts.Load(); n != 2 {
		t.Errorf("%d connections for 2 requests, want 2", n)
	}
}

// TestConnectionNotReused: responses that end the connection, from a server that would
// nevertheless keep it open and answer a next request on it.
func TestConnectionNotReused(t *testing.T) {
	url, accepts := cannedServer(t, map[string]canned{
		"/10":        {raw: "HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nnah"},
		"/10-close":  {raw: "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok"},
		"/11-close":  {raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		"/11-close2": {raw: "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nConnection: Close\r\nContent-Length: 2\r\n\r\nok"},
		"/11-close0": {raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"},
		"/11-204":    {raw: "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"},
	})
	tr, _ := newTransport(t, Options{})
	host := strings.TrimPrefix(url, "http://")
	tests := []struct {
		path, status, proto, body string
	}{
		{"/10", "404 Not Found", "HTTP/1.0", "nah"},
		{"/10", "404 Not Found", "HTTP/1.0", "nah"},
		{"/10-close", "200 OK", "HTTP/1.0", "ok"},
		{"/11-close", "200 OK", "HTTP/1.1", "ok"},
		{"/11-close2", "200 OK", "HTTP/1.1", "ok"},
		{"/11-close0", "200 OK", "HTTP/1.1", ""},
		{"/11-204", "204 No Content", "HTTP/1.1", ""},
	}
	for i, tc := range tests {
		resp, body := do(t, tr, "GET", url+tc.path, nil)
		if resp.Status != tc.status || resp.Proto != tc.proto || body != tc.body || !resp.Close {
			t.Errorf("%s: %q %q %q Close %v", tc.path, resp.Status, resp.Proto, body, resp.Close)
		}
		if resp.ProtoMinor == 1 && !wire.HasToken(resp.Header["Connection"], "close") {
			// Kept (unlike net/http) so that the proxy removes the fields it names too.
			t.Errorf("%s: Connection: close not kept in the header: %q", tc.path, resp.Header)
		}
		if st := tr.Stats(host); st.Open != 0 || st.Idle != 0 {
			t.Errorf("%s: connection kept: %+v", tc.path, st)
		}
		if n := accepts.Load(); int(n) != i+1 {
			t.Errorf("%s: %d connections after %d requests", tc.path, n, i+1)
		}
	}
}

func TestTruncatedBody(t *testing.T) {
	url, accepts := cannedServer(t, map[string]canned{
		"/fixed":   {raw: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd", close: true},
		"/chunked": {raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", close: true},
		"/no-last": {raw: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", close: true},
		"/ok":      {raw: okResp},
	})
	tr, _ := newTransport(t, Options{})
	host := strings.TrimPrefix(url, "http://")
	for i, tc := range []struct{ path, prefix string }{{"/fixed", "abcd"}, {"/chunked", "hel"}, {"/no-last", "hello"}} {
		resp, err := roundTrip(t, tr, context.Background(), "GET", url+tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != tc.prefix {
			t.Errorf("%s: read %q, %v; want %q, io.ErrUnexpectedEOF", tc.path, b, err, tc.prefix)
		}
		if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: read after the error succeeded", tc.path)
		}
		if st := tr.Stats(host); st.Open != 0 || st.Idle != 0 {
			t.Errorf("%s: connection kept after a truncated body: %+v", tc.path, st)
		}
		if _, body := do(t, tr, "GET", url+"/ok", nil); body != "ok" {
			t.Errorf("after %s: body %q", tc.path, body)
		}
		if n := accepts.Load(); int(n) != 2*(i+1) {
			t.Errorf("after %s: %d connections, want %d", tc.path, n, 2*(i+1))
		}
		tr.CloseIdleConnections()
	}
}

func TestEarlyHintsTrace(t *testing.T) {
	url, accepts := cannedServer(t, map[string]canned{
		"/": {raw: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nlink: </b.js>; rel=preload\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\n<p/>"},
	})
	tr, _ := newTransport(t, Options{})
	type interim struct {
		code int
		h    textproto.MIMEHeader
	}
	var got []interim
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, interim{code, h})
		return nil
	}}
	ctx := httptrace.WithClientTrace(context.Background(), trace)
	for i := range 2 {
		resp, err := roundTrip(t, tr, ctx, "GET", url+"/")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != "<p/>" || resp.Header.Get("Content-Type") != "text/html" {
			t.Fatalf("%d: %d %q %q, %v", i, resp.StatusCode, resp.Header, b, err)
		}
		if _, ok := resp.Header["Link"]; ok {
			t.Errorf("%d: final header has the 103's Link: %q", i, resp.Header)
		}
	}
	if len(got) != 2 {
		t.Fatalf("%d interim responses traced, want 2", len(got))
	}
	for _, g := range got {
		if want := []string{"</a.css>; rel=preload", "</b.js>; rel=preload"}; g.code != 103 || !slices.Equal(g.h["Link"], want) {
			t.Errorf("traced %d %q, want 103 with Link %q", g.code, g.h, want)
		}
	}
	if n := accepts.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestEarlyHintsTraceError(t *testing.T) {
	url, _ := cannedServer(t, map[string]canned{
		"/": {raw: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + okResp},
	})
	tr, _ := newTransport(t, Options{})
	errStop := errors.New("stop")
	trace := &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error { return errStop }}
	if _, err := roundTrip(t, tr, httptrace.WithClientTrace(context.Background(), trace), "GET", url+"/"); !errors.Is(err, errStop) {
		t.Fatalf("err = %v, want the trace's error", err)
	}
	if st := tr.Stats(strings.TrimPrefix(url, "http://")); st.Open != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestInterimLimit(t *testing.T) {
	hint := "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
	url, _ := cannedServer(t, map[string]canned{
		"/8": {raw: strings.Repeat(hint, maxInterim) + okResp},
		"/9": {raw: strings.Repeat(hint, maxInterim+1) + okResp},
		"/5": {raw: strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 5) + okResp},
	})
	tr, _ := newTransport(t, Options{})
	host := strings.TrimPrefix(url, "http://")
	var n atomic.Int32
	trace := &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error { n.Add(1); return nil }}
	ctx := httptrace.WithClientTrace(context.Background(), trace)

	for _, path := range []string{"/8", "/5"} {
		n.Store(0)
		resp, err := roundTrip(t, tr, ctx, "GET", url+path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Errorf("%s: %d %q", path, resp.StatusCode, b)
		}
		if want := strings.TrimPrefix(path, "/"); fmt.Sprint(n.Load()) != want {
			t.Errorf("%s: %d interim responses traced", path, n.Load())
		}
	}
	_, err := roundTrip(t, tr, ctx, "GET", url+"/9")
	if err == nil || !strings.Contains(err.Error(), "too many 1xx") {
		t.Fatalf("9 interim responses: err = %v, want too many 1xx responses", err)
	}
	if st := tr.Stats(host); st.Open != 0 {
		t.Errorf("stats %+v after the error", st)
	}
}

func TestResponseHeadLimit(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("p", 3000) + "\r\nContent-Length: 2\r\n\r\n"
	url, _ := cannedServer(t, map[string]canned{
		"/":      {raw: head + "ok"},
		"/small": {raw: okResp},
	})
	host := strings.TrimPrefix(url, "http://")

	t.Run("exactly the limit", func(t *testing.T) {
		tr, _ := newTransport(t, Options{MaxResponseHeaderBytes: len(head)})
		resp, body := do(t, tr, "GET", url+"/", nil)
		if body != "ok" || len(resp.Header.Get("X-Pad")) != 3000 {
			t.Errorf("body %q, X-Pad of %d bytes", body, len(resp.Header.Get("X-Pad")))
		}
		// The limit is per response: the next one on the connection has the whole budget.
		if _, body := do(t, tr, "GET", url+"/", nil); body != "ok" {
			t.Errorf("second response: body %q", body)
		}
		if st := tr.Stats(host); st.Open != 1 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("one byte over", func(t *testing.T) {
		tr, _ := newTransport(t, Options{MaxResponseHeaderBytes: len(head) - 1})
		_, err := roundTrip(t, tr, context.Background(), "GET", url+"/")
		if !errors.Is(err, errHeadTooLarge) {
			t.Fatalf("err = %v, want errHeadTooLarge", err)
		}
		if st := tr.Stats(host); st.Open != 0 {
			t.Errorf("stats %+v", st)
		}
		if _, body := do(t, tr, "GET", url+"/small", nil); body != "ok" {
			t.Errorf("small response after the error: %q", body)
		}
	})
	t.Run("1 KiB limit", func(t *testing.T) {
		tr, _ := newTransport(t, Options{MaxResponseHeaderBytes: 1 << 10})
		if _, err := roundTrip(t, tr, context.Background(), "GET", url+"/"); !errors.Is(err, errHeadTooLarge) {
			t.Fatalf("err = %v, want errHeadTooLarge", err)
		}
	})
}

// TestLongFieldLine: a field line longer than the connection's 4 KiB read buffer.
func TestLongFieldLine(t *testing.T) {
	value := strings.Repeat("0123456789abcdef", 512) // 8 KiB
	reason := strings.Repeat("R", 5000)
	url, _ := cannedServer(t, map[string]canned{
		"/value":  {raw: "HTTP/1.1 200 OK\r\nX-Long: " + value + "\r\nX-After: a\r\nContent-Length: 2\r\n\r\nok"},
		"/fold":   {raw: "HTTP/1.1 200 OK\r\nX-Long: " + value + "\r\n " + value + "\r\nContent-Length: 2\r\n\r\nok"},
		"/reason": {raw: "HTTP/1.1 200 " + reason + "\r\nContent-Length: 2\r\n\r\nok"},
	})
	tr, _ := newTransport(t, Options{MaxResponseHeaderBytes: 32 << 10})
	resp, body := do(t, tr, "GET", url+"/value", nil)
	if got := resp.Header.Get("X-Long"); got != value || resp.Header.Get("X-After") != "a" || body != "ok" {
		t.Errorf("X-Long of %d bytes (equal %v), X-After %q, body %q", len(got), got == value, resp.Header.Get("X-After"), body)
	}
	resp, body = do(t, tr, "GET", url+"/fold", nil)
	if got := resp.Header.Get("X-Long"); got != value+" "+value || body != "ok" {
		t.Errorf("folded long value of %d bytes, body %q", len(got), body)
	}
	resp, body = do(t, tr, "GET", url+"/reason", nil)
	if resp.Status != "200 "+reason || body != "ok" {
		t.Errorf("long reason: status of %d bytes, body %q", len(resp.Status), body)
	}
	if st := tr.Stats(strings.TrimPrefix(url, "http://")); st.Open != 1 || st.Idle != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestMalformedResponsesThroughTransport: a malformed head fails the request and closes the
// connection; the error says what was wrong.
func TestMalformedResponsesThroughTransport(t *testing.T) {
	resps := map[string]canned{
		"/http2":       {raw: "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		"/icy":         {raw: "ICY 200 OK\r\n\r\n"},
		"/cl-te":       {raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		"/te-10":       {raw: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		"/cl-conflict": {raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"},
		"/bad-name":    {raw: "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok"},
		"/fold-first":  {raw: "HTTP/1.1 200 OK\r\n X: 1\r\nContent-Length: 2\r\n\r\nok"},
		"/ctl":         {raw: "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\nok"},
		"/empty":       {raw: "\r\n\r\n"},
		"/ok":          {raw: okResp},
	}
	url, _ := cannedServer(t, resps)
	tr, _ := newTransport(t, Options{})
	host := strings.TrimPrefix(url, "http://")
	for path := range resps {
		if path == "/ok" {
			continue
		}
		_, err := roundTrip(t, tr, context.Background(), "GET", url+path)
		if !isResponseError(err) || !strings.Contains(err.Error(), "malformed response") {
			t.Errorf("%s: err = %v, want a malformed response error", path, err)
		}
		if st := tr.Stats(host); st.Open != 0 {
			t.Errorf("%s: connection kept: %+v", path, st)
		}
	}
	if _, body := do(t, tr, "GET", url+"/ok", nil); body != "ok" {
		t.Errorf("after the errors: body %q", body)
	}
}

// nopConn is a net.Conn that only closes, for a conn whose reader reads from memory.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// readBodyAsTransport reads the body framed by mode from br with the Transport's bodyReader.
func readBodyAsTransport(resp *http.Response, mode int, br *bufio.Reader) ([]byte, error) {
	if mode == bodyNone {
		return nil, nil
	}
	p := &pool{open: 1}
	c := &conn{p: p, nc: nopConn{}, br: br, headBudget: -1}
	tr := &Transport{o: Options{MaxIdlePerTarget: 2, MaxResponseHeaderBytes: 1 << 20}}
	b := &bodyReader{t: tr, c: c, keep: !resp.Close, ctx: context.Background(), mode: mode, remain: resp.ContentLength}
	if mode == bodyChunked {
		b.chunk = wire.ChunkedReader{Src: br, MaxTrailer: tr.o.MaxResponseHeaderBytes, Trailer: &resp.Trailer}
	}
	return io.ReadAll(b)
}

// hasObsFold reports whether the head in data (up to its empty line) has a folded line.
func hasObsFold(data []byte) bool {
	return !bytes.Equal(unfold(data), normalizeEOL(data))
}

// unfold returns data with the line ends of its head made CRLF and each obs-fold of the head
// (OWS, a line end, then SP or HTAB) replaced by one SP, as RFC 9112 §5.2 describes.
func unfold(data []byte) []byte {
	return rewriteHead(data, true)
}

// normalizeEOL returns data with the line ends of its head made CRLF.
func normalizeEOL(data []byte) []byte {
	return rewriteHead(data, false)
}

func rewriteHead(data []byte, unfold bool) []byte {
	var out []byte
	rest := data
	for first := true; ; first = false {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return append(out, rest...) // no end of the head
		}
		line := bytes.TrimSuffix(rest[:i], []byte("\r"))
		rest = rest[i+1:]
		if len(line) == 0 && !first {
			out = append(out, '\r', '\n')
			return append(out, rest...) // the body
		}
		if unfold && !first && (line[0] == ' ' || line[0] == '\t') {
			out = bytes.TrimRight(bytes.TrimSuffix(out, []byte("\r\n")), " \t")
			out = append(out, ' ')
			line = bytes.TrimLeft(line, " \t")
		}
		out = append(out, line...)
		out = append(out, '\r', '\n')
	}
}

// Fields net/http's ReadResponse changes while framing the body (or adds), so they are not
// compared: Connection (removed on close), Transfer-Encoding, Trailer and Content-Length.
var framingFields = map[string]bool{"Connection": true, "Transfer-Encoding": true, "Trailer": true, "Content-Length": true}

// Trailer fields wire.ChunkedReader drops (RFC 9110 §6.5.1); net/http keeps them.
var droppedTrailers = map[string]bool{
	"Content-Length": true, "Transfer-Encoding": true, "Host": true, "Trailer": true, "Connection": true, "Te": true, "Expect": true,
}

var fuzzSeeds = []string{
	okResp,
	"HTTP/1.1 200\r\n\r\n",
	"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nnah",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 3\n\nabc",
	"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\n\tc\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Fold: a \r\n b \r\n \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n X-Fold: a\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=\"x\"\r\nabc\r\n0\r\nX-Late: l\r\nHost: h\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd",
	"HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the close",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + okResp,
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
	"HTTP/2.0 200 OK\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 099 Low\r\n\r\n",
	"ICY 200 OK\r\n\r\n",
	"\r\n\r\n",
	"HTTP/1.1 200 O\x00K\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\n: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nset-cookie: b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200\nTrAnsfer-EnCoding:Chunked\n  \n\n", // found by the fuzzer: see the unfolding note
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\u212aed\r\n\r\n0\r\n\r\n",
	"HTTP/1.0 200 OK\r\nConnection: \u212aeep-alive\r\nContent-Length: 2\r\n\r\nok",
}

// FuzzResponseHead feeds arbitrary bytes, as the answer to a GET or HEAD, through readHead,
// parseResponse and frame, then reads the body with the Transport's bodyReader. Whenever the head
// is accepted, net/http.ReadResponse must accept it too and agree on the status, the fields
// (other than those net/http rewrites while framing), the body framing and, when both read it
// completely, the body and its trailers. Stricter rejections are allowed.
func FuzzResponseHead(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		p, err := parseHead(string(data), method)
		if err != nil {
			if err != io.EOF && err != io.ErrUnexpectedEOF && !isResponseError(err) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		r := p.resp

		// Our own invariants.
		if r.StatusCode < 100 || r.StatusCode > 999 || r.ProtoMajor != 1 || r.ProtoMinor > 1 {
			t.Fatalf("accepted status %d, proto %d.%d", r.StatusCode, r.ProtoMajor, r.ProtoMinor)
		}
		for k, vv := range r.Header {
			if !wire.ValidFieldName(k) || textproto.CanonicalMIMEHeaderKey(k) != k {
				t.Fatalf("accepted field name %q", k)
			}
			for _, v := range vv {
				if !wire.ValidFieldValue(v) || wire.TrimOWS(v) != v {
					t.Fatalf("accepted value %q for %s", v, k)
				}
			}
		}
		if _, ok := r.Header["Transfer-Encoding"]; ok {
			t.Fatal("Transfer-Encoding left in the header")
		}
		if len(r.TransferEncoding) > 0 && (len(r.Header["Content-Length"]) > 0 || !slices.Equal(r.TransferEncoding, []string{"chunked"})) {
			t.Fatalf("TE %q with Content-Length %q", r.TransferEncoding, r.Header["Content-Length"])
		}
		if p.mode == bodyFixed && r.ContentLength <= 0 || p.mode == bodyToClose && !r.Close {
			t.Fatalf("mode %s with CL %d close %v", modeName(p.mode), r.ContentLength, r.Close)
		}

		// net/http must accept what we accept, and agree. A folded head is given to net/http
		// unfolded: net/http's own unfolding keeps a trailing SP after a continuation line of
		// whitespace only ("Transfer-Encoding: chunked\r\n \r\n" reads as "chunked ", an
		// unsupported coding), where RFC 9112 §5.2 and we drop it.
		folded := hasObsFold(data)
		stdInput := data
		if folded {
			stdInput = unfold(data)
		}
		std, stdErr := http.ReadResponse(bufio.NewReader(bytes.NewReader(stdInput)), &http.Request{Method: method, Header: http.Header{}})
		if stdErr != nil {
			t.Fatalf("accepted a head net/http rejects (%v): %q (given to net/http as %q)", stdErr, data, stdInput)
		}
		if std.StatusCode != r.StatusCode || std.Status != r.Status || std.Proto != r.Proto || std.ProtoMinor != r.ProtoMinor {
			t.Fatalf("status %q %q, net/http %q %q", r.Proto, r.Status, std.Proto, std.Status)
		}
		for k := range keyUnion(r.Header, std.Header) {
			if framingFields[k] {
				continue
			}
			ours, theirs := r.Header[k], std.Header[k]
			if k == "Cache-Control" && ours == nil && slices.Equal(theirs, []string{"no-cache"}) && r.Header.Get("Pragma") == "no-cache" {
				continue // net/http's fixPragmaCacheControl adds it
			}
			if !slices.Equal(ours, theirs) {
				t.Fatalf("field %s: %q, net/http %q (input %q)", k, r.Header[k], std.Header[k], data)
			}
		}
		if std.ContentLength != r.ContentLength || std.Close != r.Close || !slices.Equal(std.TransferEncoding, r.TransferEncoding) ||
			!slices.Equal(sortedKeys(std.Trailer), sortedKeys(r.Trailer)) {
			t.Fatalf("CL %d close %v TE %q trailer %q; net/http CL %d close %v TE %q trailer %q (input %q)",
				r.ContentLength, r.Close, r.TransferEncoding, sortedKeys(r.Trailer),
				std.ContentLength, std.Close, std.TransferEncoding, sortedKeys(std.Trailer), data)
		}

		// The bodies.
		body, err := readBodyAsTransport(r, p.mode, p.br)
		stdBody, stdErr := io.ReadAll(std.Body)
		_ = std.Body.Close()
		if p.mode == bodyNone {
			if len(stdBody) != 0 {
				t.Fatalf("no body, net/http read %q", stdBody)
			}
			return
		}
		if p.mode != bodyChunked && (err == nil) != (stdErr == nil) {
			t.Fatalf("%s body: %v, net/http %v", modeName(p.mode), err, stdErr)
		}
		if err != nil || stdErr != nil {
			return // a chunked body only we, or only net/http, reject (our decoder is stricter)
		}
		if !bytes.Equal(body, stdBody) {
			t.Fatalf("body %q, net/http %q", body, stdBody)
		}
		for k := range keyUnion(r.Trailer, std.Trailer) {
			if droppedTrailers[k] {
				if len(r.Trailer[k]) > 0 {
					t.Fatalf("trailer field %s kept: %q", k, r.Trailer[k])
				}
				continue
			}
			if !slices.Equal(r.Trailer[k], std.Trailer[k]) {
				t.Fatalf("trailer %s: %q, net/http %q", k, r.Trailer[k], std.Trailer[k])
			}
		}
	})
}

// TestObsFoldTrimsBothSides: RFC 9112 §5.2 obs-fold is OWS CRLF RWS; all of it becomes one SP
// (this kept the whitespace before the CRLF once: "a \r\n b" read as "a  b").
func TestObsFoldTrimsBothSides(t *testing.T) {
	for in, want := range map[string]string{
		"a \r\n b":        "a b",
		"a\t\r\n b":       "a b",
		"a \r\n b \r\n c": "a b c",
		"a  \t\r\n\t\t b": "a b",
		"a \r\n b  c":     "a b  c", // inner whitespace of a line is the value's own
	} {
		c := &conn{br: bufio.NewReaderSize(strings.NewReader("HTTP/1.1 200 OK\r\nX-Fold: "+in+"\r\nContent-Length: 0\r\n\r\n"), 4<<10), headBudget: -1}
		if err := c.readHead(); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var st exchangeState
		if err := parseResponse(&st, string(c.head), nil); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := st.resp.Header.Get("X-Fold"); got != want {
			t.Errorf("fold %q read as %q, want %q", in, got, want)
		}
	}
}

// keyUnion is the set of field names in a or b.
func keyUnion(a, b http.Header) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}
