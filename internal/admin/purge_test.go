package admin

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/runtime"
)

type recordingPurger struct {
	calls []string
}

func (p *recordingPurger) Purge(_ context.Context, route, prefix string) (int, error) {
	p.calls = append(p.calls, "route="+route+" prefix="+prefix)
	return 3, nil
}

// TestPurgeNeedsATarget checks that a purge request says what to purge: an empty one would
// otherwise purge every route's every entry, or look like it did something ({"purged":0}).
func TestPurgeNeedsATarget(t *testing.T) {
	t.Parallel()
	cache := &recordingPurger{}
	h, err := New(Options{
		Runtime:  func() *runtime.Runtime { return nil },
		LogLevel: new(slog.LevelVar),
		Logger:   slog.New(slog.DiscardHandler),
		Cache:    cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body   string
		status int
		call   string
	}{
		{``, 400, ""},
		{`{}`, 400, ""},
		{`{"route":"","prefix":""}`, 400, ""},
		{`{"route":"users"}`, 200, "route=users prefix="},
		{`{"prefix":"/"}`, 200, "route= prefix=/"},
	} {
		cache.calls = nil
		req := httptest.NewRequest(http.MethodPost, "/api/v1/cache/purge", strings.NewReader(tc.body))
		req.Host = "127.0.0.1:9901"
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9901}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%q: status %d, want %d: %s", tc.body, rec.Code, tc.status, rec.Body)
		}
		if got := strings.Join(cache.calls, ";"); got != tc.call {
			t.Errorf("%q: purged %q, want %q", tc.body, got, tc.call)
		}
		if tc.status == 400 && !strings.Contains(rec.Body.String(), `{\"prefix\": \"/\"}`) {
			t.Errorf("%q: the error does not say how to purge everything: %s", tc.body, rec.Body)
		}
	}
}
