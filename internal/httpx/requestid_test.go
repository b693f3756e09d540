package httpx

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNewUUIDv7Format(t *testing.T) {
	now := time.Date(2026, 11, 29, 17, 45, 1, 123456789, time.UTC)
	s := NewUUIDv7(now)
	if len(s) != 36 {
		t.Fatalf("%q: length %d, want 36", s, len(s))
	}
	if s != strings.ToLower(s) {
		t.Fatalf("%q is not lower case", s)
	}
	u, err := uuid.Parse(s)
	if err != nil {
		t.Fatalf("%q does not parse as a UUID: %v", s, err)
	}
	if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("%q: version %d variant %v, want 7 and RFC 4122", s, u.Version(), u.Variant())
	}
	sec, nsec := u.Time().UnixTime()
	if got := time.Unix(sec, nsec); !got.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("%q carries time %v, want %v", s, got, now.Truncate(time.Millisecond))
	}
	// 0.456789 of the millisecond, in 12 bits: 456789 × 4096 / 10⁶ = 1871 = 0x74f.
	if s[15:18] != "74f" {
		t.Fatalf("%q: sub-millisecond bits %q, want 74f", s, s[15:18])
	}
}

// IDs sort as text in the order of their times, to the 12-bit fraction of a millisecond.
func TestNewUUIDv7SortsByTime(t *testing.T) {
	base := time.Date(2026, 11, 29, 0, 0, 0, 999_000, time.UTC)
	prev := ""
	for i := range 20000 {
		s := NewUUIDv7(base.Add(time.Duration(i) * 250 * time.Nanosecond))
		if s[:18] < prev {
			t.Fatalf("ID %d %q sorts before the previous one's time prefix %q", i, s, prev)
		}
		prev = s[:18]
	}
}

func TestNewUUIDv7Unique(t *testing.T) {
	now := time.Now() // one instant: only the random bits tell the IDs apart
	const workers, each = 4, 50000
	var mu sync.Mutex
	seen := make(map[string]bool, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			ids := make([]string, each)
			for i := range ids {
				ids[i] = NewUUIDv7(now)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if seen[id] {
					t.Errorf("duplicate ID %q", id)
					return
				}
				seen[id] = true
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d distinct IDs, want %d", len(seen), workers*each)
	}
}

func TestRequestIDAt(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		header http.Header
		want   string // "" means a new UUIDv7
	}{
		{"none", http.Header{}, ""},
		{"nil header", nil, ""},
		{"x-request-id", http.Header{"X-Request-Id": {"abc-123_DEF.9"}}, "abc-123_DEF.9"},
		{"x-correlation-id", http.Header{"X-Correlation-Id": {"corr:42"}}, "corr:42"},
		{"request id wins", http.Header{"X-Request-Id": {"a"}, "X-Correlation-Id": {"b"}}, "a"},
		{"invalid request id falls to correlation id", http.Header{"X-Request-Id": {"a b"}, "X-Correlation-Id": {"b"}}, "b"},
		{"two values", http.Header{"X-Request-Id": {"a", "b"}}, ""},
		{"too long", http.Header{"X-Request-Id": {strings.Repeat("a", MaxRequestIDLen+1)}}, ""},
		{"longest", http.Header{"X-Request-Id": {strings.Repeat("a", MaxRequestIDLen)}}, strings.Repeat("a", MaxRequestIDLen)},
		{"empty", http.Header{"X-Request-Id": {""}}, ""},
		{"quote", http.Header{"X-Request-Id": {`a"b`}}, ""},
		{"control", http.Header{"X-Request-Id": {"a\x00b"}}, ""},
		{"non-ascii", http.Header{"X-Request-Id": {"é"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RequestIDAt(tc.header, now)
			if tc.want != "" {
				if got != tc.want {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				return
			}
			u, err := uuid.Parse(got)
			if err != nil || u.Version() != 7 {
				t.Fatalf("got %q, want a new UUIDv7 (%v)", got, err)
			}
		})
	}
}

func BenchmarkNewUUIDv7(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = NewUUIDv7(now)
		}
	})
}
