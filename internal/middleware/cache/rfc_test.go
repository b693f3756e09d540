package cache

import (
	"crypto/tls"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

func TestHostKeyKeepsPort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, host string
		tls        bool
		want       string
	}{
		{"lowercased", "Shop.Example", false, "shop.example"},
		{"other port kept", "shop.example:6666", false, "shop.example:6666"},
		{"http default port dropped", "shop.example:80", false, "shop.example"},
		{"https port kept on http", "shop.example:443", false, "shop.example:443"},
		{"https default port dropped", "shop.example:443", true, "shop.example"},
		{"http port kept on https", "shop.example:80", true, "shop.example:80"},
		{"ipv6 default port", "[::1]:80", false, "[::1]"},
		{"ipv6 other port", "[::1]:8080", false, "[::1]:8080"},
		{"not a host:port", "a:1:80", false, "a:1:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{Host: tt.host}
			scheme := "http"
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
				scheme = "https"
			}
			if got := originKey(r, nil, true); got != scheme+"://"+tt.want {
				t.Fatalf("originKey(%q, tls=%v) = %q; want %q", tt.host, tt.tls, got, scheme+"://"+tt.want)
			}
		})
	}
}

// The proxy forwards the Host with its port (X-Forwarded-Host, Forwarded, preserve_host), so a
// response made for one port must not answer another.
func TestHostPortSeparatesEntries(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=60")
	f := newFixture(t, "{}", fn)
	f.expect(f.get("/p", "Host", "shop.example:6666"), 200, Miss, "v1", 1)
	f.expect(f.get("/p", "Host", "shop.example"), 200, Miss, "v2", 2)
	f.expect(f.get("/p", "Host", "SHOP.example:80"), 200, Hit, "v2", 2)
	f.expect(f.get("/p", "Host", "shop.example:6666"), 200, Hit, "v1", 2)
}

func TestSortQueryByNameOnly(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"single", "b=1", "b=1"},
		{"names sorted", "b=2&a=1", "a=1&b=2"},
		{"repeated name keeps order", "id=2&x=0&id=1", "id=2&id=1&x=0"},
		{"valueless parameter", "b&a=1&b=2", "a=1&b&b=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := sortQuery(tt.in); got != tt.want {
				t.Fatalf("sortQuery(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Origins commonly read the first of repeated parameters: ?id=1&id=2 and ?id=2&id=1 differ.
func TestRepeatedQueryParametersKeepOrder(t *testing.T) {
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "id="+r.URL.Query().Get("id"))
	})
	f.expect(f.get("/item?id=evil&id=good"), 200, Miss, "id=evil", 1)
	f.expect(f.get("/item?id=good&id=evil"), 200, Miss, "id=good", 2)
	f.expect(f.get("/item?id=good&id=evil"), 200, Hit, "id=good", 2)
	if n, err := f.hub.PurgeKey(t.Context(), "/item?id=good&id=evil"); n != 1 || err != nil {
		t.Fatalf("purge of one order: %d, %v; want 1 entry", n, err)
	}
	f.expect(f.get("/item?id=evil&id=good"), 200, Hit, "id=evil", 2)
}

// Coalesced waiters of a revalidation must not receive the refreshed entry when it was not
// stored: here the origin's 304 carries the leader's own Set-Cookie.
func TestCoalescedRevalidationKeepsLeaderCookie(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	var revalidations atomic.Int64
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Etag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			once.Do(func() { <-release }) // the first revalidation is slow
			n := revalidations.Add(1)
			w.Header().Set("Set-Cookie", "sid=session-"+strconv.FormatInt(n, 10))
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "body")
	})
	f.expect(f.get("/r"), 200, Miss, "body", 1)
	f.clock.Advance(11 * time.Second)
	leader := make(chan result)
	go func() { leader <- f.get("/r") }()
	for f.origin.hits.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	waiter := make(chan result)
	go func() { waiter <- f.get("/r") }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	l, w := <-leader, <-waiter
	if c := l.header.Get("Set-Cookie"); c != "sid=session-1" {
		t.Fatalf("leader's own Set-Cookie: %q", c)
	}
	if c := w.header.Get("Set-Cookie"); c == "sid=session-1" || w.status != 200 || w.body != "body" {
		t.Fatalf("coalesced waiter got %d %s %q with the leader's cookie %q", w.status, w.xcache(), w.body, c)
	}
}

// A leader whose response is not stored (the store fails) hands nothing to its waiters: each
// goes upstream itself.
func TestCoalescedMissNotStoredIsNotShared(t *testing.T) {
	release := make(chan struct{})
	f := newFixtureStore(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "ok")
	}, failingStore{})
	var wg sync.WaitGroup
	results := make([]result, 5)
	for i := range results {
		wg.Go(func() { results[i] = f.get("/s") })
	}
	for f.origin.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if h := f.origin.hits.Load(); h != 5 {
		t.Fatalf("origin hits %d; an entry that was not stored must not be handed to waiters", h)
	}
	for _, r := range results {
		if r.status != 200 || r.xcache() != Miss {
			t.Fatalf("got %d %s %q", r.status, r.xcache(), r.body)
		}
	}
}

// Waiters behind a leader whose response will not be stored go upstream as soon as the leader
// knows it, not after the leader's whole (slow) body.
func TestWaitersReleasedWhenLeaderWillNotStore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		plugin string
		head   func(w http.ResponseWriter) // writes what decides against storing
	}{
		{"private at the status", "{}", func(w http.ResponseWriter) {
			w.Header().Set("Cache-Control", "private")
			_, _ = io.WriteString(w, "head ")
		}},
		{"too large while streaming", "{ max_object_bytes: 1KiB }", func(w http.ResponseWriter) {
			w.Header().Set("Cache-Control", "max-age=60")
			_, _ = io.WriteString(w, strings.Repeat("x", 2048))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.plugin, func(w http.ResponseWriter, r *http.Request) {
				tt.head(w)
				w.(http.Flusher).Flush()
				time.Sleep(2 * time.Second) // a slow stream
				_, _ = io.WriteString(w, "tail")
			})
			first := make(chan struct{})
			go func() { defer close(first); f.get("/me") }()
			for f.origin.hits.Load() < 1 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			req, _ := http.NewRequest(http.MethodGet, f.front.URL+"/me", nil)
			resp, err := f.front.Client().Do(req) // returns at the response headers
			if err != nil {
				t.Fatal(err)
			}
			ttfb := time.Since(start)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			<-first
			if ttfb > 500*time.Millisecond {
				t.Fatalf("second request's headers took %v: it waited for the first response to finish", ttfb)
			}
			if h := f.origin.hits.Load(); h != 2 {
				t.Fatalf("origin hits %d; want 2", h)
			}
		})
	}
}

// RFC 9111 5.2.1.5: a request's no-store forbids storing the response; a stored response may
// still answer such a request.
func TestRequestNoStoreIsNotStored(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=60")
	f := newFixture(t, "{}", fn)
	f.expect(f.get("/ns", "Cache-Control", "no-store"), 200, Miss, "v1", 1)
	f.expect(f.get("/ns"), 200, Miss, "v2", 2)
	f.expect(f.get("/ns"), 200, Hit, "v2", 2)
	f.expect(f.get("/ns", "Cache-Control", "no-store"), 200, Hit, "v2", 2)
}

// A revalidation asked for by a no-store request does not refresh the stored entry either.
func TestRequestNoStoreRevalidationNotStored(t *testing.T) {
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Etag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "body")
	})
	f.expect(f.get("/r"), 200, Miss, "body", 1)
	f.clock.Advance(11 * time.Second)
	f.expect(f.get("/r", "Cache-Control", "no-store"), 200, Revalidated, "body", 2)
	f.expect(f.get("/r"), 200, Revalidated, "body", 3) // still stale: the first was not stored
	f.expect(f.get("/r"), 200, Hit, "body", 3)
}

// RFC 9110 13.2.1: preconditions are evaluated only for a 2xx; a cached 404 stays a 404.
func TestConditionalOnCachedNon2xxIgnored(t *testing.T) {
	lm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Last-Modified", lm)
		w.Header().Set("Etag", `"gone"`)
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "gone")
	})
	f.expect(f.get("/missing"), 404, Miss, "gone", 1)
	f.expect(f.get("/missing", "If-Modified-Since", lm), 404, Hit, "gone", 1)
	f.expect(f.get("/missing", "If-None-Match", `"gone"`), 404, Hit, "gone", 1)
}

// On a miss the cache asks without the client's validators; when the response is not stored
// the cache answers the client's conditional itself.
func TestConditionalMissOfUncacheableAnswered304(t *testing.T) {
	lm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private")
		w.Header().Set("Etag", `W/"me1"`)
		w.Header().Set("Last-Modified", lm)
		w.Header().Set("Set-Cookie", "sid=s1")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "large private body")
	})
	r := f.get("/me", "If-None-Match", `"me1"`) // weak comparison
	f.expect(r, 304, Miss, "", 1)
	if r.header.Get("Etag") != `W/"me1"` || r.header.Get("Set-Cookie") != "sid=s1" || r.header.Get("Content-Type") != "" {
		t.Fatalf("304 headers: %v", r.header)
	}
	f.expect(f.get("/me", "If-Modified-Since", lm), 304, Miss, "", 2)
	f.expect(f.get("/me", "If-None-Match", `"other"`), 200, Miss, "large private body", 3)
	f.expect(f.get("/me"), 200, Miss, "large private body", 4)
}

// TestOriginKeySeparatesWhatTheUpstreamIsTold checks that the scheme, and a trusted proxy's
// X-Forwarded-Proto and X-Forwarded-Host (which the proxy passes upstream), are in the key, and
// that an untrusted client's are not.
func TestOriginKeySeparatesWhatTheUpstreamIsTold(t *testing.T) {
	t.Parallel()
	plain := &http.Request{Host: "shop.example", Header: http.Header{}}
	secure := &http.Request{Host: "shop.example", Header: http.Header{}, TLS: &tls.ConnectionState{}}
	if originKey(plain, nil, true) == originKey(secure, nil, true) || originKey(plain, nil, false) == originKey(secure, nil, false) {
		t.Fatal("http and https share a key")
	}
	fwd := &http.Request{Host: "shop.example", Header: http.Header{"X-Forwarded-Host": {"evil.example"}, "X-Forwarded-Proto": {"https"}}}
	trusted := &httpx.Info{PeerTrusted: true}
	if got := originKey(fwd, trusted, true); got != "https://evil.example" {
		t.Fatalf("trusted proxy's forwarded origin: %q", got)
	}
	if got := originKey(fwd, &httpx.Info{}, true); got != "http://shop.example" {
		t.Fatalf("an untrusted client's X-Forwarded-* changed the key: %q", got)
	}
}
