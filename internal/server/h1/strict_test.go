package h1

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/wire"
)

// TestRefusedHeads sends heads the server must refuse before the handler runs: each gets its
// status, the connection closes after the refusal, and the handler never runs.
func TestRefusedHeads(t *testing.T) {
	t.Parallel()
	const host = "Host: x\r\n"
	tests := []struct {
		name      string
		req       string
		status    int
		smuggling bool
		method    string // of the refused request, for reading the answer; default GET
	}{
		// Ambiguous framing.
		{name: "CL then TE", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			status: 400, smuggling: true},
		{name: "TE then CL", req: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
			status: 400, smuggling: true},
		{name: "CL and TE lower case", req: "POST / HTTP/1.1\r\n" + host + "content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
			status: 400, smuggling: true},
		{name: "CL and TE mixed case", req: "POST / HTTP/1.1\r\n" + host + "TRANSFER-ENCODING: Chunked\r\ncOnTeNt-LeNgTh: 0\r\n\r\n",
			status: 400, smuggling: true},
		{name: "two TE lines", req: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
			status: 400, smuggling: true},
		{name: "TE on HTTP/1.0", req: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			status: 400, smuggling: true},
		{name: "conflicting CL", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
			status: 400, smuggling: true},
		{name: "CL 5 and 05", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 05\r\n\r\nhello",
			status: 400, smuggling: true},
		{name: "CL plus sign", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello", status: 400},
		{name: "CL minus", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", status: 400},
		{name: "CL inner space", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5 5\r\n\r\nhello", status: 400},
		{name: "CL hex", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x5\r\n\r\nhello", status: 400},
		{name: "CL list", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 1,1\r\n\r\nh", status: 400},
		{name: "CL list with space", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 1, 1\r\n\r\nh", status: 400},
		{name: "CL empty", req: "POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n", status: 400},
		{name: "CL 19 digits", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 1000000000000000000\r\n\r\n", status: 400},
		{name: "CL 30 digits", req: "POST / HTTP/1.1\r\n" + host + "Content-Length: 000000000000000000000000000005\r\n\r\nhello", status: 400},
		{name: "TE gzip", req: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", status: 501},
		{name: "TE gzip, chunked", req: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", status: 501},
		{name: "TE identity", req: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n\r\n", status: 501},
		{name: "TE chunked with junk", req: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunkedx\r\n\r\n", status: 501},

		// Line ends, folding, names and values.
		{name: "bare LF in request line", req: "GET / HTTP/1.1\n" + host + "\r\n", status: 400},
		{name: "bare LF in a field", req: "GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", status: 400},
		{name: "bare LF ends the head", req: "GET / HTTP/1.1\r\n" + host + "\n", status: 400},
		{name: "bare LF only", req: "GET / HTTP/1.1\n\n", status: 400},
		{name: "bare CR in a field", req: "GET / HTTP/1.1\r\n" + host + "X-A: 1\rX-B: 2\r\n\r\n", status: 400},
		{name: "obs-fold", req: "GET / HTTP/1.1\r\n" + host + "X-A: 1\r\n 2\r\n\r\n", status: 400},
		{name: "obs-fold with tab", req: "GET / HTTP/1.1\r\n" + host + "X-A: 1\r\n\t2\r\n\r\n", status: 400},
		{name: "fold before the first field", req: "GET / HTTP/1.1\r\n " + host + "\r\n", status: 400},
		{name: "space before colon", req: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", status: 400},
		{name: "tab before colon", req: "GET / HTTP/1.1\r\n" + host + "X-A\t: 1\r\n\r\n", status: 400},
		{name: "no colon", req: "GET / HTTP/1.1\r\n" + host + "X-A 1\r\n\r\n", status: 400},
		{name: "empty name", req: "GET / HTTP/1.1\r\n" + host + ": 1\r\n\r\n", status: 400},
		{name: "paren in name", req: "GET / HTTP/1.1\r\n" + host + "X(A): 1\r\n\r\n", status: 400},
		{name: "NUL in name", req: "GET / HTTP/1.1\r\n" + host + "X\x00A: 1\r\n\r\n", status: 400},
		{name: "non-ASCII name", req: "GET / HTTP/1.1\r\n" + host + "X-\xc3\xa9: 1\r\n\r\n", status: 400},
		{name: "NUL in value", req: "GET / HTTP/1.1\r\n" + host + "X-A: a\x00b\r\n\r\n", status: 400},
		{name: "CTL in value", req: "GET / HTTP/1.1\r\n" + host + "X-A: a\x01b\r\n\r\n", status: 400},
		{name: "DEL in value", req: "GET / HTTP/1.1\r\n" + host + "X-A: a\x7fb\r\n\r\n", status: 400},
		{name: "CR in value", req: "GET / HTTP/1.1\r\n" + host + "X-A: a\rb\r\n\r\n", status: 400},
		{name: "vertical tab in value", req: "GET / HTTP/1.1\r\n" + host + "X-A: a\vb\r\n\r\n", status: 400},

		// Host.
		{name: "missing Host", req: "GET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "two Hosts", req: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400},
		{name: "two equal Hosts", req: "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", status: 400},
		{name: "Host with space", req: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
		{name: "Host with quote", req: "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", status: 400},
		{name: "Host with brace", req: "GET / HTTP/1.1\r\nHost: a{b}\r\n\r\n", status: 400},

		// Request line.
		{name: "HTTP/2.0", req: "GET / HTTP/2.0\r\n" + host + "\r\n", status: 505},
		{name: "HTTP/3.0", req: "GET / HTTP/3.0\r\n" + host + "\r\n", status: 505},
		{name: "HTTP/1.2", req: "GET / HTTP/1.2\r\n" + host + "\r\n", status: 400},
		{name: "HTTP/1", req: "GET / HTTP/1\r\n" + host + "\r\n", status: 400},
		{name: "lower-case version", req: "GET / http/1.1\r\n" + host + "\r\n", status: 400},
		{name: "garbage version", req: "GET / FOO/1.1\r\n" + host + "\r\n", status: 400},
		{name: "version with suffix", req: "GET / HTTP/1.1x\r\n" + host + "\r\n", status: 400},
		{name: "HTTP/0.9 request line", req: "GET /\r\n\r\n", status: 400},
		{name: "space in target", req: "GET /a b HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "two spaces before target", req: "GET  / HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "tab in target", req: "GET /a\tb HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "CTL in target", req: "GET /a\x01b HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "DEL in target", req: "GET /a\x7fb HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "relative target", req: "GET a/b HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "invalid method", req: "G(T / HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "empty lines before the request line", req: strings.Repeat("\r\n", 5) + "GET / HTTP/1.1\r\n" + host + "\r\n", status: 400},
		{name: "CONNECT with a bad authority", req: "CONNECT a:b:c HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, method: "CONNECT"},
		{name: "CONNECT with an open bracket", req: "CONNECT [::1 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400, method: "CONNECT"},

		// Expect.
		{name: "Expect other than 100-continue", req: "POST / HTTP/1.1\r\n" + host + "Expect: 200-ok\r\nContent-Length: 1\r\n\r\nx", status: 417},
		{name: "two Expects", req: "POST / HTTP/1.1\r\n" + host + "Expect: 100-continue\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", status: 417},
		{name: "Expect on HTTP/1.0", req: "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", status: 417},

		// Declared trailers that would change the framing (net/http refuses these too).
		{name: "Trailer: Content-Length", req: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n0\r\n\r\n", status: 400},
		{name: "Trailer: Transfer-Encoding", req: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTrailer: x, transfer-encoding\r\n\r\n0\r\n\r\n", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := start(t, ok)
			c := dial(t, ts.addr)
			// A good request after the bad one must never be parsed from the leftover bytes.
			c.send(tc.req + "GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			method := tc.method
			if method == "" {
				method = "GET"
			}
			r := c.read(method)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %q)", r.StatusCode, tc.status, r.body)
			}
			if !r.Close {
				t.Errorf("refusal without Connection: close")
			}
			c.expectClosed()
			if n := ts.calls.Load(); n != 0 {
				t.Errorf("handler ran %d times", n)
			}
			refused := ts.refusals()
			if len(refused) != 1 {
				t.Fatalf("Refuse called %d times", len(refused))
			}
			if e := refused[0]; e.Status != tc.status || e.Smuggling != tc.smuggling {
				t.Errorf("RequestError %+v, want status %d smuggling %v", e, tc.status, tc.smuggling)
			}
		})
	}
}

// TestAcceptedEdgeHeads checks heads that look odd but are valid, so strictness does not turn
// into refusing good clients.
func TestAcceptedEdgeHeads(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, uri, host string
		cl                int64
		body              string
		header            http.Header
	}
	got := make(chan seen, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("body: %v", err)
		}
		got <- seen{r.Method, r.RequestURI, r.Host, r.ContentLength, string(b), r.Header}
	})
	tests := []struct {
		name, req string
		want      seen
	}{
		{name: "OWS around CL", req: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \t5 \r\n\r\nhello",
			want: seen{method: "POST", uri: "/a", host: "x", cl: 5, body: "hello"}},
		{name: "equal CLs", req: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
			want: seen{method: "POST", uri: "/a", host: "x", cl: 2, body: "hi"}},
		{name: "CL 18 digits of zeros", req: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 000000000000000002\r\n\r\nhi",
			want: seen{method: "POST", uri: "/a", host: "x", cl: 2, body: "hi"}},
		{name: "TE chunked upper case", req: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
			want: seen{method: "POST", uri: "/a", host: "x", cl: -1, body: "hi"}},
		{name: "empty lines before the request line", req: "\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n",
			want: seen{method: "GET", uri: "/a", host: "x"}},
		{name: "HTTP/1.0 without Host", req: "GET /a HTTP/1.0\r\n\r\n",
			want: seen{method: "GET", uri: "/a"}},
		{name: "empty Host", req: "GET /a HTTP/1.1\r\nHost:\r\n\r\n",
			want: seen{method: "GET", uri: "/a"}},
		{name: "absolute form wins over Host", req: "GET http://y:8080/a?b HTTP/1.1\r\nHost: x\r\n\r\n",
			want: seen{method: "GET", uri: "http://y:8080/a?b", host: "y:8080"}},
		{name: "asterisk", req: "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
			want: seen{method: "OPTIONS", uri: "*", host: "x"}},
		{name: "CONNECT authority", req: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
			want: seen{method: "CONNECT", uri: "example.com:443", host: "example.com:443"}},
		{name: "extension method and obs-text value", req: "PURGE /a HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9\t\r\n\r\n",
			want: seen{method: "PURGE", uri: "/a", host: "x", header: http.Header{"X-A": {"caf\xc3\xa9"}}}},
		{name: "names are canonicalized", req: "GET /a HTTP/1.1\r\nhOsT: x\r\nx-forwarded-for: 1\r\nX-FORWARDED-FOR: 2\r\nsome_thing: 3\r\n\r\n",
			want: seen{method: "GET", uri: "/a", host: "x", header: http.Header{"X-Forwarded-For": {"1", "2"}, "Some_thing": {"3"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send(tc.req)
			method := tc.want.method
			r := c.read(method)
			if r.StatusCode != 200 {
				t.Fatalf("status %d (%q)", r.StatusCode, r.body)
			}
			s := within(t, got, "the handler")
			if s.method != tc.want.method || s.uri != tc.want.uri || s.host != tc.want.host || s.cl != tc.want.cl || s.body != tc.want.body {
				t.Errorf("handler saw %+v, want %+v", s, tc.want)
			}
			for k, v := range tc.want.header {
				if strings.Join(s.header[k], "|") != strings.Join(v, "|") {
					t.Errorf("header %s = %q, want %q", k, s.header[k], v)
				}
			}
			if _, ok := s.header["Host"]; ok {
				t.Errorf("Host left in r.Header")
			}
		})
	}
}

// TestOversizedHead checks MaxHeaderBytes: a head over it gets 431, one under it is served.
func TestOversizedHead(t *testing.T) {
	t.Parallel()
	ts := start(t, ok, func(s *Server) { s.MaxHeaderBytes = 2048 })

	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1900) + "\r\n\r\n")
	if r := c.read("GET"); r.StatusCode != 200 {
		t.Fatalf("head under the limit: status %d", r.StatusCode)
	}

	for _, tc := range []struct{ name, head string }{
		{"one long field", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 3000) + "\r\n\r\n"},
		{"many fields", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: 1234567890\r\n", 200) + "\r\n"},
		{"long request line", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"no end in sight", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send(tc.head)
			r := c.read("GET")
			if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("status %d, want 431", r.StatusCode)
			}
			c.expectClosed()
		})
	}
	if n := ts.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

// TestRefusalAfterGoodRequest pipelines a good request, a refused one and another good one: the
// first is answered, the second refused, the third never answered.
func TestRefusalAfterGoodRequest(t *testing.T) {
	t.Parallel()
	ts := start(t, ok)
	c := dial(t, ts.addr)
	c.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); r.StatusCode != 200 || r.body != "ok" || r.Close {
		t.Fatalf("first: %d %q close=%v", r.StatusCode, r.body, r.Close)
	}
	if r := c.read("POST"); r.StatusCode != 400 || !strings.Contains(r.body, "request_smuggling") {
		t.Fatalf("second: %d %q", r.StatusCode, r.body)
	}
	c.expectClosed()
	if n := ts.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

// TestBadChunkedBodies sends chunked bodies that break off in a malformed way: the handler
// sees a read error, the connection closes, and nothing after the bad body is parsed as a
// request.
func TestBadChunkedBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		max        int
		want       error
	}{
		{name: "bad chunk size", body: "zz\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "negative chunk size", body: "-5\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "0x prefix", body: "0x5\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "empty chunk size", body: "\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "space in chunk size", body: "5 5\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "bare LF after size", body: "5\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "missing CRLF after data", body: "5\r\nhelloXX0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "bare LF after data", body: "5\r\nhello\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "data longer than size", body: "3\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "chunk size overflow", body: "10000000000000005\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "16 hex digits", body: "ffffffffffffffff\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "CTL in chunk extension", body: "5;a=\x01\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "size line too long", body: "5;" + strings.Repeat("a", 5000) + "\r\nhello\r\n0\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "malformed trailer", body: "5\r\nhello\r\n0\r\nNo colon\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "folded trailer", body: "5\r\nhello\r\n0\r\nX-A: 1\r\n 2\r\n\r\n", want: wire.ErrMalformedChunk},
		{name: "bare LF trailer", body: "5\r\nhello\r\n0\r\nX-A: 1\n\r\n", want: wire.ErrMalformedChunk},
		{name: "oversized trailers", max: 1024,
			body: "5\r\nhello\r\n0\r\n" + strings.Repeat("X-T: "+strings.Repeat("t", 500)+"\r\n", 3) + "\r\n", want: wire.ErrTrailerTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errc := make(chan error, 2)
			ts := start(t, func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				errc <- err
				w.WriteHeader(http.StatusBadRequest)
			}, func(s *Server) {
				if tc.max > 0 {
					s.MaxHeaderBytes = tc.max
				}
			})
			c := dial(t, ts.addr)
			c.send("POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + tc.body +
				"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			if err := within(t, errc, "the handler"); !errors.Is(err, tc.want) {
				t.Errorf("handler read error %v, want %v", err, tc.want)
			}
			if r := c.read("POST"); r.StatusCode != 400 {
				t.Errorf("status %d", r.StatusCode)
			}
			c.expectClosed()
			if n := ts.calls.Load(); n != 1 {
				t.Errorf("handler ran %d times, want 1", n)
			}
		})
	}
}

// TestTruncatedBodies: a client that closes mid-body makes the handler's read fail with
// io.ErrUnexpectedEOF.
func TestTruncatedBodies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, req string }{
		{"fixed length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello"},
		{"chunked data", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello"},
		{"chunked size line", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
		{"chunked trailers", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-A: 1\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errc := make(chan error, 1)
			ts := start(t, func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				errc <- err
			})
			c := dial(t, ts.addr)
			c.send(tc.req)
			_ = c.Conn.(interface{ CloseWrite() error }).CloseWrite()
			if err := within(t, errc, "the handler"); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("read error %v, want io.ErrUnexpectedEOF", err)
			}
		})
	}
}
