package admin

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/runtime"
)

// TestAdminTokenReadPerRequest checks the access rules against the token Options.Token returns
// now: a rotated token replaces the old one at once, and without a token only requests to a
// loopback host on a loopback connection are answered.
func TestAdminTokenReadPerRequest(t *testing.T) {
	var token atomic.Pointer[string]
	set := func(s string) { token.Store(&s) }
	set("")
	h, err := New(Options{
		Token:    func() string { return *token.Load() },
		Runtime:  func() *runtime.Runtime { return nil },
		LogLevel: new(slog.LevelVar),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9901}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 9901}
	tests := []struct {
		name   string
		token  string // the current token
		auth   string // Authorization header
		host   string
		local  net.Addr // the connection's local address; nil: none (not served by net/http)
		status int
	}{
		{"no token, loopback", "", "", "127.0.0.1:9901", loopback, 200},
		{"no token, localhost", "", "", "localhost:9901", loopback, 200},
		{"no token, foreign host", "", "", "evil.example:9901", loopback, 403},
		{"no token, remote connection naming localhost", "", "", "localhost:9901", remote, 403},
		{"no token, no connection address", "", "", "localhost:9901", nil, 403},
		{"token A, bearer A", "token-a-0123456789", "Bearer token-a-0123456789", "127.0.0.1:9901", loopback, 200},
		{"token A, no bearer", "token-a-0123456789", "", "127.0.0.1:9901", loopback, 401},
		{"rotated to B, bearer A", "token-b-0123456789", "Bearer token-a-0123456789", "127.0.0.1:9901", loopback, 401},
		{"rotated to B, bearer B", "token-b-0123456789", "bearer token-b-0123456789", "127.0.0.1:9901", loopback, 200},
		{"token B, remote connection", "token-b-0123456789", "Bearer token-b-0123456789", "gw.example:9901", remote, 200},
		{"token removed, stale bearer, loopback", "", "Bearer token-b-0123456789", "127.0.0.1:9901", loopback, 200},
		{"token removed, stale bearer, remote", "", "Bearer token-b-0123456789", "localhost:9901", remote, 403},
	}
	// Sequential on purpose: each case sets the token the next ones rotate from.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set(tc.token)
			req := httptest.NewRequest(http.MethodGet, "/api/v1/log-level", nil)
			req.Host = tc.host
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.local != nil {
				req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, tc.local))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
		})
	}
}
