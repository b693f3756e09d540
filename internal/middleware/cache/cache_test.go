package cache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func TestMaxAgeFreshThenStale(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=60")
	f := newFixture(t, "{}", fn)
	f.expect(f.get("/a"), 200, Miss, "v1", 1)
	r := f.get("/a")
	f.expect(r, 200, Hit, "v1", 1)
	if r.header.Get("Age") != "0" || r.header.Get("Ratelimit") == "" || r.header.Get("X-Request-Id") == "" {
		t.Fatalf("hit headers: %v", r.header)
	}
	f.clock.Advance(30 * time.Second)
	r = f.get("/a")
	f.expect(r, 200, Hit, "v1", 1)
	if r.header.Get("Age") != "30" {
		t.Fatalf("Age = %q, want 30", r.header.Get("Age"))
	}
	if got := r.header.Values("Ratelimit"); len(got) != 1 {
		t.Fatalf("outer middleware's header was stored and replayed: %q", got)
	}
	f.clock.Advance(31 * time.Second)
	f.expect(f.get("/a"), 200, Miss, "v2", 2)
	f.expect(f.get("/a"), 200, Hit, "v2", 2)
}

func TestDirectives(t *testing.T) {
	tests := []struct {
		name string
		// headers of the origin's response
		hdr []string
		// advance before the second request
		after time.Duration
		// whether the second request is served from the cache
		hit bool
	}{
		{"s-maxage wins over max-age (stale)", []string{"Cache-Control", "max-age=100, s-maxage=10"}, 11 * time.Second, false},
		{"s-maxage wins over max-age (fresh)", []string{"Cache-Control", "max-age=1, s-maxage=100"}, 50 * time.Second, true},
		{"no-store", []string{"Cache-Control", "no-store, max-age=60"}, 0, false},
		{"private", []string{"Cache-Control", "private, max-age=60"}, 0, false},
		{"private with fields", []string{"Cache-Control", `private="X-User", max-age=60`}, 0, false},
		{"no-cache without validator", []string{"Cache-Control", "no-cache, max-age=60"}, 0, false},
		{"public", []string{"Cache-Control", "public, max-age=60"}, 10 * time.Second, true},
		{"Expires fresh", []string{"Expires", "+30"}, 29 * time.Second, true},
		{"Expires stale", []string{"Expires", "+30"}, 31 * time.Second, false},
		{"invalid Expires is expired", []string{"Expires", "0"}, 0, false},
		{"max-age wins over Expires", []string{"Cache-Control", "max-age=100", "Expires", "+5"}, 50 * time.Second, true},
		{"Age shortens freshness (fresh)", []string{"Cache-Control", "max-age=60", "Age", "50"}, 9 * time.Second, true},
		{"Age shortens freshness (stale)", []string{"Cache-Control", "max-age=60", "Age", "50"}, 11 * time.Second, false},
		{"Vary star", []string{"Cache-Control", "max-age=60", "Vary", "*"}, 0, false},
		{"Set-Cookie", []string{"Cache-Control", "max-age=60", "Set-Cookie", "s=1"}, 0, false},
		{"no-cache=Set-Cookie strips it", []string{"Cache-Control", `max-age=60, no-cache="Set-Cookie"`, "Set-Cookie", "s=1"}, 0, true},
		{"default ttl", nil, 59 * time.Second, true},
		{"default ttl over", nil, 61 * time.Second, false},
		{"malformed max-age", []string{"Cache-Control", "max-age=abc"}, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var f *fixture
			f = newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i+1 < len(tc.hdr); i += 2 {
					v := tc.hdr[i+1]
					if tc.hdr[i] == "Expires" && strings.HasPrefix(v, "+") {
						d, _ := time.ParseDuration(v[1:] + "s")
						v = f.clock.Now().Add(d).UTC().Format(http.TimeFormat)
					}
					w.Header().Add(tc.hdr[i], v)
				}
				_, _ = io.WriteString(w, "body")
			})
			f.expect(f.get("/x"), 200, Miss, "body", 1)
			f.clock.Advance(tc.after)
			r := f.get("/x")
			if tc.hit {
				f.expect(r, 200, Hit, "body", 1)
			} else {
				f.expect(r, 200, Miss, "body", 2)
			}
			if tc.hit && r.header.Get("Set-Cookie") != "" {
				t.Fatalf("stored Set-Cookie replayed: %v", r.header)
			}
		})
	}
}

func TestZeroTTLCachesOnlyExplicitFreshness(t *testing.T) {
	f := newFixture(t, "{ ttl: 0s }", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/explicit" {
			w.Header().Set("Cache-Control", "max-age=60")
		}
		_, _ = io.WriteString(w, "ok")
	})
	f.expect(f.get("/implicit"), 200, Miss, "ok", 1)
	f.expect(f.get("/implicit"), 200, Miss, "ok", 2)
	f.expect(f.get("/explicit"), 200, Miss, "ok", 3)
	f.expect(f.get("/explicit"), 200, Hit, "ok", 3)
}

func TestStatuses(t *testing.T) {
	f := newFixture(t, "{ statuses: [200, 404] }", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(404)
		case "/broken":
			w.WriteHeader(500)
		case "/gone":
			w.WriteHeader(410)
		}
		_, _ = io.WriteString(w, r.URL.Path)
	})
	f.expect(f.get("/missing"), 404, Miss, "/missing", 1)
	f.expect(f.get("/missing"), 404, Hit, "/missing", 1)
	f.expect(f.get("/broken"), 500, Miss, "/broken", 2)
	f.expect(f.get("/broken"), 500, Miss, "/broken", 3)
	f.expect(f.get("/gone"), 410, Miss, "/gone", 4) // not in this route's list
	f.expect(f.get("/gone"), 410, Miss, "/gone", 5)
}

func TestAuthorization(t *testing.T) {
	tests := []struct {
		cc    string
		store bool
	}{
		{"max-age=60", false},
		{"public, max-age=60", true},
		{"s-maxage=60", true},
		{"must-revalidate, max-age=60", true},
	}
	for _, tc := range tests {
		t.Run(tc.cc, func(t *testing.T) {
			t.Parallel()
			fn, _ := counter("Cache-Control", tc.cc)
			f := newFixture(t, "{}", fn)
			f.expect(f.get("/p", "Authorization", "Bearer a"), 200, Miss, "v1", 1)
			if tc.store {
				f.expect(f.get("/p", "Authorization", "Bearer b"), 200, Hit, "v1", 1)
			} else {
				f.expect(f.get("/p", "Authorization", "Bearer b"), 200, Miss, "v2", 2)
			}
		})
	}
	t.Run("anonymous entry not reused with Authorization", func(t *testing.T) {
		t.Parallel()
		fn, _ := counter("Cache-Control", "max-age=60")
		f := newFixture(t, "{}", fn)
		f.expect(f.get("/p"), 200, Miss, "v1", 1)
		f.expect(f.get("/p"), 200, Hit, "v1", 1)
		f.expect(f.get("/p", "Authorization", "Bearer a"), 200, Miss, "v2", 2)
	})
}

func TestPerUserKey(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=60")
	f := newFixture(t, "{ key: { user: true } }", fn)
	f.subject.Store("alice")
	f.expect(f.get("/me", "Authorization", "Bearer a"), 200, Miss, "v1", 1)
	f.expect(f.get("/me", "Authorization", "Bearer a"), 200, Hit, "v1", 1)
	f.subject.Store("bob")
	f.expect(f.get("/me", "Authorization", "Bearer b"), 200, Miss, "v2", 2)
	f.expect(f.get("/me", "Authorization", "Bearer b"), 200, Hit, "v2", 2)
	f.subject.Store("alice")
	f.expect(f.get("/me", "Authorization", "Bearer a"), 200, Hit, "v1", 2)
}

func TestKeyComponents(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=60")
	f := newFixture(t, "{ key: { headers: [X-Tenant] } }", fn)
	f.expect(f.get("/q?a=1&b=2"), 200, Miss, "v1", 1)
	f.expect(f.get("/q?b=2&a=1"), 200, Hit, "v1", 1) // sorted query
	f.expect(f.get("/q?a=1"), 200, Miss, "v2", 2)
	f.expect(f.get("/q?a=1&b=2", "Host", "other.example"), 200, Miss, "v3", 3)
	f.expect(f.get("/q?a=1&b=2", "X-Tenant", "t1"), 200, Miss, "v4", 4)
	f.expect(f.get("/q?a=1&b=2", "X-Tenant", "t1"), 200, Hit, "v4", 4)
	f.expect(f.get("/q?b=2&a=1"), 200, Hit, "v1", 4)

	g := newFixture(t, "{ key: { host: false, query: false } }", fn)
	g.expect(g.get("/q?a=1", "Host", "one.example"), 200, Miss, "v5", 1)
	g.expect(g.get("/q?zzz", "Host", "two.example"), 200, Hit, "v5", 1)
}

func TestVary(t *testing.T) {
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	})
	f.expect(f.get("/v", "Accept-Language", "en"), 200, Miss, "lang=en", 1)
	f.expect(f.get("/v", "Accept-Language", "de"), 200, Miss, "lang=de", 2)
	f.expect(f.get("/v", "Accept-Language", "en"), 200, Hit, "lang=en", 2)
	f.expect(f.get("/v", "Accept-Language", "de"), 200, Hit, "lang=de", 2)
	f.expect(f.get("/v"), 200, Miss, "lang=", 3)
	f.expect(f.get("/v"), 200, Hit, "lang=", 3)
}

func TestUnsafeMethodInvalidates(t *testing.T) {
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/items" {
			w.Header().Set("Location", "/items/7")
			w.WriteHeader(201)
			return
		}
		if r.Method != http.MethodGet {
			w.WriteHeader(204)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, r.URL.Path)
	})
	f.expect(f.get("/items"), 200, Miss, "/items", 1)
	f.expect(f.get("/items/7"), 200, Miss, "/items/7", 2)
	f.expect(f.get("/items/8"), 200, Miss, "/items/8", 3)
	f.expect(f.get("/items"), 200, Hit, "/items", 3)
	f.expect(f.do(http.MethodPost, "/items"), 201, Bypass, "", 4)
	f.expect(f.get("/items"), 200, Miss, "/items", 5)
	f.expect(f.get("/items/7"), 200, Miss, "/items/7", 6) // Location
	f.expect(f.get("/items/8"), 200, Hit, "/items/8", 6)
	f.expect(f.do(http.MethodDelete, "/items/8"), 204, Bypass, "", 7)
	f.expect(f.get("/items/8"), 200, Miss, "/items/8", 8)
	f.expect(f.do(http.MethodOptions, "/items/8"), 204, Bypass, "", 9)
	f.expect(f.get("/items/8"), 200, Hit, "/items/8", 9) // OPTIONS is safe
}

func TestClientConditionalAnsweredFromCache(t *testing.T) {
	lm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)
	fn, _ := counter("Cache-Control", "max-age=60", "Etag", `"abc"`, "Last-Modified", lm)
	f := newFixture(t, "{}", fn)
	// A miss asks the origin without the client's validators, so the full response is stored.
	f.expect(f.get("/c", "If-None-Match", `"abc"`), 200, Miss, "v1", 1)
	if r := f.origin.lastRequest(); r.Header.Get("If-None-Match") != "" {
		t.Fatalf("client validator forwarded on a miss: %v", r.Header)
	}
	r := f.get("/c", "If-None-Match", `"zzz", W/"abc"`)
	f.expect(r, 304, Hit, "", 1)
	if r.header.Get("Etag") != `"abc"` || r.header.Get("Cache-Control") != "max-age=60" {
		t.Fatalf("304 headers: %v", r.header)
	}
	f.expect(f.get("/c", "If-None-Match", `"old"`), 200, Hit, "v1", 1)
	f.expect(f.get("/c", "If-Modified-Since", lm), 304, Hit, "", 1)
	earlier := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	f.expect(f.get("/c", "If-Modified-Since", earlier), 200, Hit, "v1", 1)
	// If-None-Match wins over If-Modified-Since.
	f.expect(f.get("/c", "If-None-Match", `"old"`, "If-Modified-Since", lm), 200, Hit, "v1", 1)
}

func TestRevalidationWith304(t *testing.T) {
	for _, validator := range []string{"Etag", "Last-Modified"} {
		t.Run(validator, func(t *testing.T) {
			t.Parallel()
			lm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)
			var f *fixture
			f = newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=10")
				w.Header().Set("X-Version", "2")
				if validator == "Etag" {
					w.Header().Set("Etag", `"v1"`)
					if r.Header.Get("If-None-Match") == `"v1"` {
						w.WriteHeader(304)
						return
					}
				} else {
					w.Header().Set("Last-Modified", lm)
					if r.Header.Get("If-Modified-Since") == lm {
						w.WriteHeader(304)
						return
					}
				}
				w.Header().Set("X-Version", "1")
				_, _ = io.WriteString(w, "full body")
			})
			f.expect(f.get("/r"), 200, Miss, "full body", 1)
			f.clock.Advance(11 * time.Second)
			r := f.get("/r")
			f.expect(r, 200, Revalidated, "full body", 2)
			if r.header.Get("X-Version") != "2" || r.header.Get("Age") != "0" {
				t.Fatalf("the 304's headers were not applied: %v", r.header)
			}
			f.expect(f.get("/r"), 200, Hit, "full body", 2)
			f.clock.Advance(11 * time.Second)
			// A client's own matching conditional gets 304 after the cache revalidated.
			cond := []string{"If-None-Match", `"v1"`}
			if validator != "Etag" {
				cond = []string{"If-Modified-Since", lm}
			}
			f.expect(f.get("/r", cond...), 304, Revalidated, "", 3)
		})
	}
	t.Run("no-cache revalidates every time", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Etag", `"e"`)
			if r.Header.Get("If-None-Match") == `"e"` {
				w.WriteHeader(304)
				return
			}
			_, _ = io.WriteString(w, "body")
		})
		f.expect(f.get("/n"), 200, Miss, "body", 1)
		f.expect(f.get("/n"), 200, Revalidated, "body", 2)
		f.expect(f.get("/n"), 200, Revalidated, "body", 3)
	})
	t.Run("changed resource replaces the entry", func(t *testing.T) {
		t.Parallel()
		fn, _ := counter("Cache-Control", "max-age=10", "Etag", `"x"`)
		f := newFixture(t, "{}", fn)
		f.expect(f.get("/c"), 200, Miss, "v1", 1)
		f.clock.Advance(11 * time.Second)
		f.expect(f.get("/c"), 200, Miss, "v2", 2)
		if f.origin.lastRequest().Header.Get("If-None-Match") != `"x"` {
			t.Fatal("no conditional request for a stale entry with an ETag")
		}
		f.expect(f.get("/c"), 200, Hit, "v2", 2)
	})
}

func TestStaleWhileRevalidate(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=10, stale-while-revalidate=30")
	f := newFixture(t, "{}", fn)
	f.expect(f.get("/s"), 200, Miss, "v1", 1)
	f.clock.Advance(15 * time.Second)
	r := f.get("/s")
	if r.status != 200 || r.xcache() != Stale || r.body != "v1" || r.header.Get("Age") != "15" {
		t.Fatalf("stale response: %d %s %q %v", r.status, r.xcache(), r.body, r.header)
	}
	f.h.bgWG.Wait()
	f.expect(f.get("/s"), 200, Hit, "v2", 2)
	// Beyond the window: a normal miss.
	f.clock.Advance(45 * time.Second)
	f.expect(f.get("/s"), 200, Miss, "v3", 3)
	// must-revalidate forbids serving stale.
	g := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=30, must-revalidate")
		_, _ = io.WriteString(w, "x")
	})
	g.expect(g.get("/s"), 200, Miss, "x", 1)
	g.clock.Advance(15 * time.Second)
	g.expect(g.get("/s"), 200, Miss, "x", 2)
}

func TestStaleIfError(t *testing.T) {
	for _, cc := range []string{"max-age=10, stale-if-error=60", "max-age=10, stale-if-error=60, must-revalidate", "max-age=10, stale-if-error=60, proxy-revalidate"} {
		t.Run(cc, func(t *testing.T) {
			t.Parallel()
			var failing sync.Mutex
			fail := false
			f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
				failing.Lock()
				defer failing.Unlock()
				if fail {
					w.WriteHeader(503)
					_, _ = io.WriteString(w, "down")
					return
				}
				w.Header().Set("Cache-Control", cc)
				_, _ = io.WriteString(w, "good")
			})
			f.expect(f.get("/e"), 200, Miss, "good", 1)
			failing.Lock()
			fail = true
			failing.Unlock()
			f.clock.Advance(20 * time.Second)
			r := f.get("/e")
			if strings.Contains(cc, "revalidate") {
				f.expect(r, 503, Miss, "down", 2)
				return
			}
			f.expect(r, 200, Stale, "good", 2)
			// The origin unreachable altogether (the proxy answers 502).
			f.origin.Close()
			f.expect(f.get("/e"), 200, Stale, "good", 2)
			f.clock.Advance(60 * time.Second)
			if r := f.get("/e"); r.status != 502 {
				t.Fatalf("beyond stale-if-error: %d %s", r.status, r.xcache())
			}
		})
	}
}

func TestCoalescing(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, strings.Repeat("x", 10000))
	})
	const n = 100
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Go(func() { results[i] = f.get("/hot") })
	}
	// Let every request arrive and queue behind the first.
	deadline := time.Now().Add(5 * time.Second)
	for f.origin.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	if h := f.origin.hits.Load(); h != 1 {
		t.Fatalf("%d concurrent misses made %d origin requests; want 1", n, h)
	}
	misses := 0
	for _, r := range results {
		if r.status != 200 || len(r.body) != 10000 {
			t.Fatalf("coalesced response: %d, %d bytes", r.status, len(r.body))
		}
		if r.xcache() == Miss {
			misses++
		}
	}
	if misses != 1 {
		t.Fatalf("%d responses were MISS; want exactly the leader", misses)
	}
}

func TestCoalescingWaitIsBounded(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	f := newFixture(t, "{ lock_timeout: 100ms }", func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		if first {
			<-release // the leader hangs
		}
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "ok")
	})
	done := make(chan result)
	go func() { done <- f.get("/slow") }()
	for f.origin.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	r := f.get("/slow")
	if r.status != 200 || r.xcache() != Miss || time.Since(start) > 2*time.Second {
		t.Fatalf("waiter after lock_timeout: %d %s after %v", r.status, r.xcache(), time.Since(start))
	}
	close(release)
	<-done
}

func TestUncacheableLeaderLetsWaitersThrough(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "private stuff")
	})
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if r := f.get("/u"); r.status != 200 || r.body != "private stuff" {
				t.Errorf("got %d %q", r.status, r.body)
			}
		})
	}
	for f.origin.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if h := f.origin.hits.Load(); h != 5 {
		t.Fatalf("origin hits %d; a no-store response must not be shared with waiters", h)
	}
}

func TestMaxObjectSize(t *testing.T) {
	big := strings.Repeat("b", 10000)
	f := newFixture(t, "{ max_object_bytes: 4KiB }", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Path == "/chunked" {
			for range 5 {
				_, _ = io.WriteString(w, big[:1000])
				w.(http.Flusher).Flush()
			}
			return
		}
		_, _ = io.WriteString(w, big[:len(r.URL.Path)*1000])
	})
	f.expect(f.get("/big12"), 200, Miss, big[:6000], 1)
	f.expect(f.get("/big12"), 200, Miss, big[:6000], 2)
	f.expect(f.get("/chunked"), 200, Miss, big[:5000], 3)
	f.expect(f.get("/chunked"), 200, Miss, big[:5000], 4)
	f.expect(f.get("/ok"), 200, Miss, big[:3000], 5)
	f.expect(f.get("/ok"), 200, Hit, big[:3000], 5)
}

func TestHeadAndBypass(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=60", "Surrogate-Key", "a b")
	f := newFixture(t, "{}", fn)
	f.expect(f.do(http.MethodHead, "/h"), 200, Miss, "", 1)
	f.expect(f.do(http.MethodHead, "/h"), 200, Miss, "", 2) // HEAD responses are not stored
	r := f.get("/h")
	f.expect(r, 200, Miss, "v3", 3)
	if r.header.Get("Surrogate-Key") != "" {
		t.Fatal("tag header sent to the client")
	}
	r = f.do(http.MethodHead, "/h")
	f.expect(r, 200, Hit, "", 3)
	if r.header.Get("Content-Length") != "2" || r.header.Get("Surrogate-Key") != "" {
		t.Fatalf("HEAD hit headers: %v", r.header)
	}
	f.expect(f.get("/h", "Range", "bytes=0-0"), 200, Bypass, "v4", 4)
}

func TestHeaderNameConfigurable(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=60")
	f := newFixture(t, "{}", fn)
	f.h.xcache = "X-Edge-Cache"
	f.get("/n")
	if r := f.get("/n"); r.header.Get("X-Edge-Cache") != Hit || r.header.Get("X-Cache") != "" {
		t.Fatalf("headers: %v", r.header)
	}
}

func TestPurge(t *testing.T) {
	f := newFixture(t, "{}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Surrogate-Key", "all "+strings.Split(r.URL.Path, "/")[1])
		if r.URL.Path == "/users/vary" {
			w.Header().Set("Vary", "Accept")
		}
		_, _ = io.WriteString(w, r.URL.Path)
	})
	paths := []string{"/users/1", "/users/2?b=1&a=2", "/users/vary", "/orders/1", "/orders/2"}
	fill := func() {
		for _, p := range paths {
			f.get(p)
		}
	}
	fill()
	ctx := context.Background()
	check := func(what string, n, want int, err error, gone ...string) {
		t.Helper()
		if err != nil || n != want {
			t.Fatalf("%s: purged %d (%v); want %d", what, n, err, want)
		}
		for _, p := range paths {
			r := f.get(p)
			wantX := Hit
			for _, g := range gone {
				if g == p {
					wantX = Miss
				}
			}
			if r.xcache() != wantX {
				t.Fatalf("%s: %s is %s, want %s", what, p, r.xcache(), wantX)
			}
		}
	}
	n, err := f.hub.PurgeKey(ctx, "/users/2?a=2&b=1")
	check("key", n, 1, err, "/users/2?b=1&a=2")
	n, err = f.hub.PurgePrefix(ctx, "/users/")
	check("prefix", n, 4, err, paths[:3]...) // two entries, a marker and its variant
	n, err = f.hub.PurgeTag(ctx, "orders")
	check("tag", n, 2, err, "/orders/1", "/orders/2")
	n, err = f.hub.Purge(ctx, "other-route", "")
	check("other route", n, 0, err)
	n, err = f.hub.Purge(ctx, "r", "/orders/1")
	check("route and prefix", n, 1, err, "/orders/1")
	if _, err := f.hub.PurgeKey(ctx, "has space"); err == nil {
		t.Fatal("a key with a space was accepted")
	}
}

// failingStore fails every call, as a Redis that is down does.
type failingStore struct{}

var errDown = errors.New("store down")

func (failingStore) Get(context.Context, string) (*store.CacheEntry, error) { return nil, errDown }
func (failingStore) Set(context.Context, string, *store.CacheEntry, time.Duration) error {
	return errDown
}
func (failingStore) Delete(context.Context, ...string) (int, error) { return 0, errDown }
func (failingStore) DeleteMatching(context.Context, string, func(string) bool) (int, error) {
	return 0, errDown
}
func (failingStore) DeleteTag(context.Context, string) (int, error) { return 0, errDown }

func TestStoreFailureNeverFailsRequests(t *testing.T) {
	fn, _ := counter("Cache-Control", "max-age=60")
	f := newFixtureStore(t, "{}", fn, failingStore{})
	f.expect(f.get("/f"), 200, Miss, "v1", 1)
	f.expect(f.get("/f"), 200, Miss, "v2", 2)
	f.expect(f.do(http.MethodPut, "/f"), 200, Bypass, "v3", 3)
}
