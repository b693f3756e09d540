package store

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

func testEntry(body string, tags ...string) *CacheEntry {
	return &CacheEntry{Status: 200, Header: http.Header{"Content-Type": {"text/plain"}, "Vary": {"A", "B"}},
		Body: []byte(body), RequestTime: 1, ResponseTime: -2, Tags: tags}
}

func TestEntryCodecRoundTrip(t *testing.T) {
	for _, e := range []*CacheEntry{
		testEntry("hello", "t1", "t2"),
		{Status: 0, Vary: []string{"Accept", "X"}, Nonce: "abc"},
		{Status: 204, Header: http.Header{}},
	} {
		got, err := DecodeEntry(EncodeEntry(e))
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Header) == 0 {
			e.Header = http.Header{}
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(EncodeEntry(testEntry("body", "t")))
	f.Add([]byte{1, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err == nil && !bytes.Equal(EncodeEntry(e)[:1], []byte{entryVersion}) {
			t.Fatal("decoded an entry that does not encode")
		}
	})
}

func TestDecodeRejectsTruncated(t *testing.T) {
	b := EncodeEntry(testEntry("some body", "tag"))
	for i := range len(b) - 1 {
		if _, err := DecodeEntry(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
}

// cacheStoreContract runs the behaviour both stores share.
func cacheStoreContract(t *testing.T, s CacheStore) {
	ctx := context.Background()
	if e, err := s.Get(ctx, "c:/none x y"); e != nil || err != nil {
		t.Fatalf("missing key: %v %v", e, err)
	}
	keys := []string{"c:/users/1 r h", "c:/users/1 r h v1", "c:/users/10 r h", "c:/users/2 other h", "c:/orders/[1]* r h"}
	for i, k := range keys {
		if err := s.Set(ctx, k, testEntry(k, "all", "t"+strconv.Itoa(i%2)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	e, err := s.Get(ctx, keys[0])
	if err != nil || e == nil || string(e.Body) != keys[0] || e.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("get: %+v %v", e, err)
	}
	n, err := s.DeleteMatching(ctx, "c:/users/1 ", nil)
	if n != 2 || err != nil {
		t.Fatalf("exact URL purge: %d %v", n, err)
	}
	n, err = s.DeleteMatching(ctx, "c:/users/", func(k string) bool { return strings.Contains(k, " other ") })
	if n != 1 || err != nil {
		t.Fatalf("route-filtered prefix purge: %d %v", n, err)
	}
	// Glob characters in keys are literal.
	n, err = s.DeleteMatching(ctx, "c:/orders/[1]*", nil)
	if n != 1 || err != nil {
		t.Fatalf("literal prefix purge: %d %v", n, err)
	}
	if _, err := s.DeleteMatching(ctx, "x", nil); err == nil {
		t.Fatal("a prefix outside the cache's keys was accepted")
	}
	for i, k := range keys {
		if err := s.Set(ctx, k, testEntry(k, "all", "t"+strconv.Itoa(i%2)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteTag(ctx, "t1"); n != 2 || err != nil {
		t.Fatalf("tag purge: %d %v", n, err)
	}
	if e, _ := s.Get(ctx, keys[1]); e != nil {
		t.Fatal("tagged entry survived its purge")
	}
	if n, err := s.Delete(ctx, keys[0], keys[1], "c:/nope r h"); n != 1 || err != nil {
		t.Fatalf("delete: %d %v", n, err)
	}
	if n, err := s.DeleteTag(ctx, "all"); n != 2 || err != nil {
		t.Fatalf("tag purge of the rest: %d %v", n, err)
	}
	// Entries expire with their ttl.
	if err := s.Set(ctx, "c:/short r h", testEntry("x"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		e, _ := s.Get(ctx, "c:/short r h")
		if e == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("entry outlived its ttl")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMemoryCacheContract(t *testing.T) {
	m, err := NewMemoryCache(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cacheStoreContract(t, m)
}

func TestMemoryCacheBoundedByBytes(t *testing.T) {
	const max = 1 << 20
	m, err := NewMemoryCache(max)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	body := strings.Repeat("x", 10_000)
	for i := range 1000 { // ~10 MB offered to a 1 MiB cache
		_ = m.Set(ctx, "c:/k"+strconv.Itoa(i)+" r h", testEntry(body), time.Hour)
	}
	m.c.CleanUp()
	if w := m.c.WeightedSize(); w > max {
		t.Fatalf("weighted size %d exceeds %d", w, max)
	}
	if n := m.Len(); n < 50 || n > 105 {
		t.Fatalf("%d entries of ~10KB held in 1MiB", n)
	}
}

func TestRedisCacheContract(t *testing.T) {
	rs := redisserver.Start(t)
	r, err := NewRedisCache(redisConfig(rs.URL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cacheStoreContract(t, r)
	// Keys carry the configured prefix; tag sets expire.
	_ = r.Set(context.Background(), "c:/p", testEntry("x", "tg"), time.Minute)
	if v, _ := rs.Do("EXISTS", "t:c:/p"); v != "1" {
		t.Fatalf("prefixed key missing: %q", v)
	}
	if v, _ := rs.Do("TTL", "t:ctag:tg"); v == "-1" || v == "-2" {
		t.Fatalf("tag set TTL %q", v)
	}
}

func TestRedisCacheOutageIsPrompt(t *testing.T) {
	rs := redisserver.Start(t)
	r, err := NewRedisCache(redisConfig(rs.URL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	_ = r.Set(ctx, "c:/a r h", testEntry("x"), time.Minute)
	rs.Pause()
	defer rs.Resume()
	start := time.Now()
	if _, err := r.Get(ctx, "c:/a r h"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("paused redis: %v", err)
	}
	start2 := time.Now()
	if _, err := r.Get(ctx, "c:/a r h"); !errors.Is(err, ErrUnavailable) || time.Since(start2) > 10*time.Millisecond {
		t.Fatalf("second call during backoff took %v (%v)", time.Since(start2), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("outage cost %v", d)
	}
	rs.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if e, err := r.Get(ctx, "c:/a r h"); err == nil && e != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("did not recover after redis resumed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisCacheClientCancelDoesNotSetRedisAside: a lookup whose client went away must not
// make the cache proxy everyone uncached for the back-off.
func TestRedisCacheClientCancelDoesNotSetRedisAside(t *testing.T) {
	rs := redisserver.Start(t)
	r, err := NewRedisCache(redisConfig(rs.URL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Get(ctx, "c:/gone"); err == nil {
		t.Fatal("a cancelled lookup reported success")
	}
	if _, err := r.Get(context.Background(), "c:/other"); err != nil || r.Failures() != 0 {
		t.Fatalf("the next lookup with Redis healthy: %v (failures %d)", err, r.Failures())
	}
}
