package proxy

import (
	"net/http"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// recordingWriter records each WriteHeader call with the fields it carried.
type recordingWriter struct {
	h     http.Header
	heads []string
}

func (r *recordingWriter) Header() http.Header         { return r.h }
func (r *recordingWriter) Write(p []byte) (int, error) { return len(p), nil }
func (r *recordingWriter) WriteHeader(code int) {
	r.heads = append(r.heads, http.StatusText(code)+" Link="+r.h.Get("Link")+" X-Own="+r.h.Get("X-Own"))
}

// An upstream 1xx goes out with its own fields only, 100 Continue is not passed on, and once
// the final response is chosen a late 1xx (an abandoned attempt's) is dropped.
func TestEarlyHintsForwardAndClose(t *testing.T) {
	w := &recordingWriter{h: http.Header{"X-Own": {"final"}, "Link": {"</final>"}}}
	e := &earlyHints{w: w}
	hint := textproto.MIMEHeader{"Link": {"</a.css>; rel=preload"}}
	if err := e.Interim(http.StatusContinue, nil); err != nil || len(w.heads) != 0 {
		t.Fatalf("100 Continue passed on: %v %v", w.heads, err)
	}
	if err := e.Interim(http.StatusEarlyHints, hint); err != nil {
		t.Fatal(err)
	}
	if len(w.heads) != 1 || w.heads[0] != "Early Hints Link=</a.css>; rel=preload X-Own=final" {
		t.Fatalf("1xx written as %q", w.heads)
	}
	if w.h.Get("Link") != "</final>" {
		t.Fatalf("the final response's Link became %q", w.h.Get("Link"))
	}
	e.close()
	if err := e.Interim(http.StatusEarlyHints, hint); err != nil || len(w.heads) != 1 {
		t.Fatalf("a 1xx after close was written: %q %v", w.heads, err)
	}
}

func TestRemoveHopByHop(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"fixed set", http.Header{
			"Connection": {"keep-alive"}, "Proxy-Connection": {"x"}, "Keep-Alive": {"timeout=5"},
			"Proxy-Authenticate": {"Basic"}, "Proxy-Authorization": {"Basic eA=="}, "Te": {"gzip"},
			"Trailer": {"X-T"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"websocket"}, "X-Keep": {"1"},
		}, http.Header{"X-Keep": {"1"}}},
		{"named by Connection", http.Header{
			"Connection": {"X-Secret, x-other ,", "close"}, "X-Secret": {"s"}, "X-Other": {"o"}, "X-Keep": {"1"},
		}, http.Header{"X-Keep": {"1"}}},
		{"connection options", http.Header{
			"Connection": {"Keep-Alive, CLOSE"}, "Keep-Alive": {"timeout=5"}, "Close": {"x"}, "X-Keep": {"1"},
		}, http.Header{"X-Keep": {"1"}}},
		{"te trailers kept", http.Header{"Te": {"gzip, TRAILERS"}, "Content-Type": {"application/grpc"}},
			http.Header{"Te": {"trailers"}, "Content-Type": {"application/grpc"}}},
		{"te named by Connection is dropped", http.Header{"Connection": {"TE"}, "Te": {"trailers"}}, http.Header{}},
		{"nothing to do", http.Header{"A": {"1"}, "B": {"2"}}, http.Header{"A": {"1"}, "B": {"2"}}},
		{"empty", http.Header{}, http.Header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			removeHopByHop(tc.in)
			if !reflect.DeepEqual(tc.in, tc.want) {
				t.Fatalf("got %v, want %v", tc.in, tc.want)
			}
		})
	}
}

// writeForwardedValue writes what the former quoteForwarded returned: s itself when it is a
// plain token, else strconv.Quote(s).
func TestWriteForwardedValue(t *testing.T) {
	old := func(s string) string {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return strconv.Quote(s)
			}
		}
		return s
	}
	inputs := []string{"", "example.com", "127.0.0.1:8080", "[::1]:80", `a"b`, `a\b`, "a b", "é.example", "x\x00y", "tab\there", "del\x7f"}
	for c := 0; c < 256; c++ {
		inputs = append(inputs, "h"+string([]byte{byte(c)}))
	}
	for _, in := range inputs {
		var b strings.Builder
		writeForwardedValue(&b, in)
		if got, want := b.String(), old(in); got != want {
			t.Errorf("writeForwardedValue(%q) = %q, want %q", in, got, want)
		}
	}
}
