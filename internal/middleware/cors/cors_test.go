package cors

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The gateway's CORS fields replace whatever the handler behind it (the proxy, the cache)
// merged into the head, however the head goes out: WriteHeader, a first Write or a Flush.
// An interim response leaves the final head to be fixed.
func TestGatewayOwnsCORSFields(t *testing.T) {
	t.Parallel()
	route := &config.Route{Name: "r"}
	route.Plugins.CORS = &config.CORS{AllowedOrigins: []string{"https://app.example.com"}}
	mw, err := New(route)
	if err != nil {
		t.Fatal(err)
	}
	upstream := func(w http.ResponseWriter) {
		h := w.Header()
		h["Access-Control-Allow-Origin"] = append(h["Access-Control-Allow-Origin"], "*")
		h["Access-Control-Allow-Credentials"] = []string{"true"}
		h["Access-Control-Max-Age"] = []string{"600"}
		h["X-Other"] = []string{"kept"}
	}
	for _, tc := range []struct {
		name, origin string
		send         func(w http.ResponseWriter)
		acao         []string
	}{
		{"WriteHeader", "https://app.example.com", func(w http.ResponseWriter) { w.WriteHeader(http.StatusTeapot) }, []string{"https://app.example.com"}},
		{"Write", "https://app.example.com", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, []string{"https://app.example.com"}},
		{"Flush", "https://app.example.com", func(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }, []string{"https://app.example.com"}},
		{"early hints first", "https://app.example.com", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			upstream(w) // the final response's fields arrive after the 103
			w.WriteHeader(http.StatusOK)
		}, []string{"https://app.example.com"}},
		{"refused origin", "https://evil.example", func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				upstream(w)
				tc.send(w)
			}))
			rec := &headRecorder{h: http.Header{}}
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			r.Header.Set("Origin", tc.origin)
			h.ServeHTTP(rec, r)
			got := rec.final
			if acao := got.Values("Access-Control-Allow-Origin"); !reflect.DeepEqual(acao, tc.acao) && len(acao)+len(tc.acao) > 0 {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", acao, tc.acao)
			}
			for _, k := range []string{"Access-Control-Allow-Credentials", "Access-Control-Max-Age"} {
				if v := got.Values(k); len(v) != 0 {
					t.Errorf("the upstream's %s = %q reached the client", k, v)
				}
			}
			if got.Get("X-Other") != "kept" {
				t.Errorf("a non-CORS field was dropped: %v", got)
			}
		})
	}
}

// headRecorder keeps the fields of the final response head (httptest.ResponseRecorder takes
// a 1xx for the final one).
type headRecorder struct {
	h, final http.Header
}

func (r *headRecorder) Header() http.Header { return r.h }
func (r *headRecorder) WriteHeader(code int) {
	if code >= 200 && r.final == nil {
		r.final = r.h.Clone()
	}
}
func (r *headRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(p), nil
}
func (r *headRecorder) Flush() { r.WriteHeader(http.StatusOK) }
