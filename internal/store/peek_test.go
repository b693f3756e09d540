package store

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

// TestMemoryPeek: Peek reports what Allow would (remaining before the next request), follows
// the refill, and never counts.
func TestMemoryPeek(t *testing.T) {
	t.Parallel()
	m, clk := newTestMemory(100)
	a := req("a", 2, time.Minute, 1) // capacity 3, one every 30s
	peekOne := func() Result {
		res := make([]Result, 1)
		m.Peek([]Request{a}, res)
		return res[0]
	}
	if r := peekOne(); r.Remaining != 3 || r.Reset != 0 || !r.Allowed {
		t.Fatalf("idle key: %+v", r)
	}
	for i := range 3 {
		_, res := allow(t, m, a)
		for range 3 { // peeking repeatedly changes nothing
			if r := peekOne(); r.Remaining != res[0].Remaining || r.Reset != res[0].Reset {
				t.Fatalf("after request %d: peek %+v, Allow said %+v", i, r, res[0])
			}
		}
	}
	if r := peekOne(); r.Remaining != 0 || r.Allowed || r.RetryAfter != 30*time.Second || r.Reset != 90*time.Second {
		t.Fatalf("exhausted: %+v", r)
	}
	if ok, _ := allow(t, m, a); ok {
		t.Fatal("peeking let a request through")
	}
	clk.advance(31 * time.Second)
	if r := peekOne(); r.Remaining != 1 || !r.Allowed {
		t.Fatalf("after 31s: %+v", r)
	}
}

// TestRedisPeek: the same through Redis, with a missing counter, a counter being used, and a
// server that is down (an error per counter, nothing else).
func TestRedisPeek(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t)
	r := newTestRedis(t, redisConfig(srv.URL()))
	a := req("a", 10, time.Hour, 2) // capacity 12
	b := req("b", 3, time.Hour, 0)
	for range 4 {
		allow(t, r, a)
	}
	res := make([]Result, 2)
	for range 2 {
		if errs := r.Peek(context.Background(), []Request{a, b}, res); errs[0] != nil || errs[1] != nil {
			t.Fatalf("peek: %v", errs)
		}
		if res[0].Remaining != 8 || res[0].Reset < 24*time.Minute-time.Second || res[0].Reset > 24*time.Minute || res[1].Remaining != 3 || res[1].Reset != 0 {
			t.Fatalf("peek %+v", res)
		}
	}
	if _, got := allow(t, r, a); got[0].Remaining != 7 {
		t.Fatalf("peek consumed: remaining %d after the 5th request, want 7", got[0].Remaining)
	}
	srv.Kill()
	errs := r.Peek(context.Background(), []Request{a, b}, res)
	if errs[0] == nil || errs[1] == nil {
		t.Fatalf("peek with Redis down: %v", errs)
	}
	if !r.Available() {
		t.Fatal("a failed peek paused the limiter")
	}
}
