package proxy

import (
	"net/http"
	"net/textproto"
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
	if err := e.forward(http.StatusContinue, nil); err != nil || len(w.heads) != 0 {
		t.Fatalf("100 Continue passed on: %v %v", w.heads, err)
	}
	if err := e.forward(http.StatusEarlyHints, hint); err != nil {
		t.Fatal(err)
	}
	if len(w.heads) != 1 || w.heads[0] != "Early Hints Link=</a.css>; rel=preload X-Own=final" {
		t.Fatalf("1xx written as %q", w.heads)
	}
	if w.h.Get("Link") != "</final>" {
		t.Fatalf("the final response's Link became %q", w.h.Get("Link"))
	}
	e.close()
	if err := e.forward(http.StatusEarlyHints, hint); err != nil || len(w.heads) != 1 {
		t.Fatalf("a 1xx after close was written: %q %v", w.heads, err)
	}
}
