package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/wire"
)

var headSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a/b?c=d#e HTTP/1.0\r\n\r\n",
	"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: \t007 \r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999999\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nTrailer: X-A, x-b\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: content-length\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nTrailer: content-length\r\nContent-Length: 1\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	"POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET http://user@example.com:80/x?y HTTP/1.1\r\nHost: other\r\n\r\n",
	"GET https://[::1]:443/ HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
	"CONNECT a:b:c HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT /rpc HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Obs: caf\xe9\r\nx-lower: 1\r\nX-LOWER: 2\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\n\n",
	"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n",
	"GET / HTTP/1.1\r\nHost:\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nAn-Extraordinarily-Long-Header-Name-Past-Sixty-Four-Bytes-Of-Letters: v\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nan-extraordinarily-long-header-name-past-sixty-four-bytes-of-letters: v\r\n\r\n",
}

// FuzzParseHead feeds arbitrary bytes through the head parser. It must never panic, and
// whatever it accepts (framing, target and Host included) net/http must accept too and read
// the same way: this server may be stricter than net/http, never looser.
func FuzzParseHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 8 << 10
		buf, err := readHead(bufio.NewReaderSize(bytes.NewReader(data), bufSize), nil, max)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("readHead error %v", err)
			}
			return
		}
		if len(buf) > max || !bytes.HasSuffix(buf, []byte("\r\n\r\n")) || !bytes.Contains(data, buf) {
			t.Fatalf("readHead returned %q", buf)
		}
		h, rerr := parseHead(string(buf))
		if rerr != nil {
			return
		}
		u := new(url.URL)
		if rerr := requestURL(h.method, h.target, u); rerr != nil {
			return
		}
		fr, rerr := requestFraming(&h)
		if rerr != nil {
			return
		}
		host, rerr := requestHost(&h, u)
		if rerr != nil {
			return
		}

		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(buf)))
		if err != nil {
			t.Fatalf("accepted a head net/http refuses (%v):\n%q", err, buf)
		}
		if req.Method != h.method || req.RequestURI != h.target || req.Host != host ||
			req.ProtoMinor != h.protoMinor || req.ProtoMajor != 1 || req.URL.String() != u.String() {
			t.Fatalf("request line read differently:\nours    %s %s %q HTTP/1.%d %s\nnet/http %s %s %q HTTP/%d.%d %s\n%q",
				h.method, h.target, host, h.protoMinor, u, req.Method, req.RequestURI, req.Host, req.ProtoMajor, req.ProtoMinor, req.URL, buf)
		}
		if fr.chunked {
			if req.ContentLength != -1 || !slices.Equal(req.TransferEncoding, []string{"chunked"}) {
				t.Fatalf("chunked; net/http: length %d, %v\n%q", req.ContentLength, req.TransferEncoding, buf)
			}
		} else if req.ContentLength != fr.length {
			t.Fatalf("length %d; net/http %d\n%q", fr.length, req.ContentLength, buf)
		}
		closing := wire.HasToken(h.header["Connection"], "close") || h.protoMinor == 0 && !wire.HasToken(h.header["Connection"], "keep-alive")
		if closing != req.Close {
			t.Fatalf("close %v; net/http %v\n%q", closing, req.Close, buf)
		}
		for k, vv := range h.header {
			theirs := req.Header[k]
			switch {
			case k == "Host", k == "Transfer-Encoding", k == "Trailer" && fr.chunked:
				// net/http moves these into Host, TransferEncoding and Trailer.
				continue
			case k == "Content-Length":
				vv = vv[:1] // equal duplicates (anything else is refused) are folded into one
			}
			if !slices.Equal(vv, theirs) {
				t.Fatalf("header %s: %q; net/http %q\n%q", k, vv, theirs, buf)
			}
		}
		for k := range req.Header {
			if _, ok := h.header[k]; !ok && !(k == "Cache-Control" && h.header.Get("Pragma") == "no-cache") {
				t.Fatalf("net/http has header %s that we do not\n%q", k, buf)
			}
		}
		if fr.chunked {
			for k := range declaredTrailers(h.header["Trailer"]) {
				if _, ok := req.Trailer[k]; !ok {
					t.Fatalf("declared trailer %s; net/http %v\n%q", k, req.Trailer, buf)
				}
			}
		}
	})
}

var chunkedSeeds = []string{
	"0\r\n\r\n",
	"5\r\nhello\r\n0\r\n\r\n",
	"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	"A\r\n0123456789\r\n0\r\n\r\n",
	"a;ext=1;q=\"x y\"\r\n0123456789\r\n0\r\n\r\n",
	"5 ;ext\r\nhello\r\n0\r\n\r\n",
	"5\r\nhello\r\n0\r\nX-Trailer: v\r\nContent-Length: 1\r\n\r\n",
	"000000000000005\r\nhello\r\n0\r\n\r\n",
	"0000000000000005\r\nhello\r\n0\r\n\r\n",
	"fffffffffffffff\r\nhello",
	"10000000000000000\r\nhello\r\n0\r\n\r\n",
	"5\r\nhelloXX0\r\n\r\n",
	"5\nhello\n0\n\n",
	"5\r\nhel",
	"zz\r\n",
	"-1\r\n",
	"0x5\r\nhello\r\n0\r\n\r\n",
	"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n",
	"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n",
}

// FuzzChunkedBody reads arbitrary bytes as a chunked request body. It must never panic or
// return more bytes than it was given, must agree with draining the same body, and a body
// it reads to the end must decode as net/http's chunked reader decodes it.
func FuzzChunkedBody(f *testing.F) {
	for i, s := range chunkedSeeds {
		f.Add([]byte(s), uint8(i*7))
	}
	f.Fuzz(func(t *testing.T, data []byte, size uint8) {
		req := &http.Request{}
		b := &body{c: &conn{}, src: bufio.NewReaderSize(bytes.NewReader(data), bufSize), chunked: true,
			maxTrail: 1024, req: req}
		p := make([]byte, int(size)%64+1)
		var out []byte
		var err error
		for i := 0; err == nil; i++ {
			var n int
			n, err = b.Read(p)
			if n < 0 || n > len(p) {
				t.Fatalf("Read returned %d for %d bytes", n, len(p))
			}
			if n == 0 && err == nil {
				t.Fatalf("Read returned 0, nil")
			}
			out = append(out, p[:n]...)
			if len(out) > len(data) {
				t.Fatalf("decoded %d bytes from %d", len(out), len(data))
			}
		}
		if n, err2 := b.Read(p); n != 0 || err2 != err {
			t.Fatalf("Read after %v: %d, %v", err, n, err2)
		}
		for k := range req.Trailer {
			switch k {
			case "Content-Length", "Transfer-Encoding", "Host", "Trailer":
				t.Fatalf("trailer %s accepted", k)
			}
		}

		d := &body{c: &conn{}, src: bufio.NewReaderSize(bytes.NewReader(data), bufSize), chunked: true, maxTrail: 1024}
		if drained := d.drain(1 << 20); drained != (err == io.EOF) {
			t.Fatalf("drain %v, Read ended with %v\n%q", drained, err, data)
		}
		if err != io.EOF {
			return
		}
		want, err2 := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data)))
		if err2 == nil && !bytes.Equal(out, want) {
			t.Fatalf("decoded %q; net/http %q\n%q", out, want, data)
		}
		if err2 != nil && !strings.Contains(err2.Error(), "too much non-data") && !bytes.Contains(data, []byte(" ;")) &&
			!bytes.Contains(data, []byte("\t;")) {
			// Only BWS before a chunk extension (RFC 9112 §7.1.1) and net/http's overhead
			// limit separate what we accept from what net/http accepts.
			t.Fatalf("decoded %q; net/http refuses: %v\n%q", out, err2, data)
		}
	})
}

// fakeConn is a connection that reads a fixed input, then io.EOF, and records what is
// written to it.
type fakeConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error)         { return f.r.Read(p) }
func (f *fakeConn) Write(p []byte) (int, error)        { return f.w.Write(p) }
func (f *fakeConn) Close() error                       { return nil }
func (f *fakeConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (f *fakeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234} }
func (f *fakeConn) SetDeadline(t time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(t time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzServe runs a connection over arbitrary input (requests, bodies, garbage). Nothing may
// panic, and what the server writes must read back as one well-formed response per request
// it served or refused, in order, and nothing else.
func FuzzServe(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	for _, s := range chunkedSeeds {
		f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + s + "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	}
	f.Add([]byte("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhiHEAD / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.0\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("GET /flush HTTP/1.1\r\nHost: x\r\n\r\nHEAD /flush HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		logs := &bytes.Buffer{}
		var methods []string
		s := &Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				methods = append(methods, r.Method)
				b, err := io.ReadAll(r.Body)
				if err != nil {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				if r.URL.Path == "/flush" {
					_ = http.NewResponseController(w).Flush()
				}
				_, _ = w.Write(b)
			}),
			Refuse: func(w http.ResponseWriter, r *http.Request, e *RequestError) {
				methods = append(methods, r.Method)
				defaultRefuse(w, r, e)
			},
			MaxHeaderBytes: 4096,
			Logger:         slog.New(slog.NewTextHandler(logs, nil)),
		}
		fc := &fakeConn{r: bytes.NewReader(data)}
		c := s.newConn(context.Background(), fc)
		c.serve()
		if strings.Contains(logs.String(), "panic") {
			t.Fatalf("panic: %s", logs.String())
		}
		out := bufio.NewReader(&fc.w)
		for i, m := range methods {
			var res *http.Response
			for {
				var err error
				res, err = http.ReadResponse(out, &http.Request{Method: m})
				if err != nil {
					t.Fatalf("response %d of %d: %v\ninput %q\noutput %q", i+1, len(methods), err, data, fc.w.String())
				}
				if _, err := io.Copy(io.Discard, res.Body); err != nil {
					t.Fatalf("response %d body: %v\ninput %q", i+1, err, data)
				}
				if res.StatusCode >= 200 {
					break
				}
			}
			if res.Close && i < len(methods)-1 {
				t.Fatalf("response %d closes the connection, but %d more requests were served\ninput %q", i+1, len(methods)-i-1, data)
			}
		}
		if rest, _ := io.ReadAll(out); len(rest) > 0 {
			t.Fatalf("%d bytes after the last response: %q\ninput %q", len(rest), rest, data)
		}
	})
}

// FuzzParseOrigin: wherever parseOrigin takes a target, url.ParseRequestURI gives the same
// URL; a target it leaves alone is left untouched.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a?b=c", "/a?", "/a??", "/a?b?", "//x", "/a%20b",
		"/a b", "/a#b", "/!$&'()*+,;=:@", "/a?\x7f", "/a?\tb", "*", "http://h/p", "", "?", "/é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		var u url.URL
		u.Fragment = "untouched"
		if !parseOrigin(target, &u) {
			if u.Fragment != "untouched" || u.Path != "" {
				t.Fatalf("parseOrigin(%q) refused the target but changed the URL: %#v", target, u)
			}
			return
		}
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("parseOrigin took %q, which net/url refuses: %v", target, err)
		}
		if u != *want {
			t.Fatalf("parseOrigin(%q) = %#v, net/url %#v", target, u, *want)
		}
	})
}
