package store

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable time source in nanoseconds.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() int64              { return c.ns.Load() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTestMemory(maxKeys int) (*Memory, *clock) {
	m := NewMemory(maxKeys)
	c := &clock{}
	c.ns.Store(int64(1000 * time.Hour))
	m.now = c.now
	return m, c
}

func req(key string, limit int, per time.Duration, burst int) Request {
	return Request{Key: []byte(key), Interval: per / time.Duration(limit), Capacity: int64(limit + burst)}
}

func allow(t *testing.T, l Limiter, reqs ...Request) (bool, []Result) {
	t.Helper()
	res := make([]Result, len(reqs))
	ok, err := l.Allow(context.Background(), reqs, res)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	return ok, res
}

func TestGCRABurstThenSteadyRate(t *testing.T) {
	t.Parallel()
	m, c := newTestMemory(100)
	r := req("k", 10, time.Second, 5) // 10/s, 15 at once
	for i := range 15 {
		ok, res := allow(t, m, r)
		if !ok || res[0].Remaining != int64(14-i) {
			t.Fatalf("request %d: allowed=%v remaining=%d", i, ok, res[0].Remaining)
		}
	}
	ok, res := allow(t, m, r)
	if ok || res[0].RetryAfter != 100*time.Millisecond || res[0].Remaining != 0 {
		t.Fatalf("16th: allowed=%v %+v, want denied with retry 100ms", ok, res[0])
	}
	if res[0].Reset != 1500*time.Millisecond {
		t.Fatalf("reset %v, want 1.5s until the full budget is back", res[0].Reset)
	}
	// Smooth: 99ms later still denied, at 100ms exactly one more.
	c.advance(99 * time.Millisecond)
	if ok, _ := allow(t, m, r); ok {
		t.Fatal("admitted before the emission interval passed")
	}
	c.advance(time.Millisecond)
	if ok, _ := allow(t, m, r); !ok {
		t.Fatal("not admitted after the emission interval")
	}
	if ok, _ := allow(t, m, r); ok {
		t.Fatal("two admitted in one interval")
	}
	// Over any long span the count is capacity + span*rate: no window edge doubles it.
	m2, c2 := newTestMemory(100)
	n := 0
	for range 3000 { // 3s in 1ms steps
		if ok, _ := allow(t, m2, r); ok {
			n++
		}
		c2.advance(time.Millisecond)
	}
	if want := 15 + 30 - 1; n < want || n > want+1 {
		t.Fatalf("admitted %d over 3s, want about %d (burst 15 + 10/s)", n, want)
	}
}

func TestAllOrNothing(t *testing.T) {
	t.Parallel()
	// Room for both keys whatever shard they hash to: with 100 keys over 256 shards (one per
	// shard), the two landed in one shard about once in 256 runs and the second evicted the first.
	m, _ := newTestMemory(1 << 16)
	tight := req("tight", 1, time.Hour, 0)
	loose := req("loose", 100, time.Hour, 0)
	if ok, _ := allow(t, m, loose, tight); !ok {
		t.Fatal("first request denied")
	}
	for range 5 {
		ok, res := allow(t, m, loose, tight)
		if ok || res[0].Allowed != true || res[1].Allowed {
			t.Fatalf("allowed=%v res=%+v, want denied by tight only", ok, res)
		}
	}
	// The denied requests did not count against the loose limit.
	_, res := allow(t, m, loose)
	if res[0].Remaining != 98 {
		t.Fatalf("loose remaining %d, want 98 (1 earlier + this one)", res[0].Remaining)
	}
}

func TestMemoryBoundedUnderKeyFlood(t *testing.T) {
	t.Parallel()
	const maxKeys = 1024
	m, c := newTestMemory(maxKeys)
	hot := req("hot-user", 3, time.Hour, 0)
	allow(t, m, hot)
	for i := range 200_000 { // IP spraying: every request a new key
		allow(t, m, req(fmt.Sprintf("ip-%d", i), 1, time.Second, 0))
		if i%1000 == 0 {
			c.advance(time.Millisecond)
		}
	}
	perShard := (maxKeys + numShards - 1) / numShards
	if n := m.Len(); n > numShards*perShard {
		t.Fatalf("%d keys tracked, bound is %d", n, numShards*perShard)
	}
	// Idle keys expire: after their budget is full again, they make room first.
	c.advance(2 * time.Second)
	allow(t, m, req("late", 1, time.Second, 0))
	if _, ok := m.shards[shardOf(m.hash([]byte("late")))].tats[m.hash([]byte("late"))]; !ok {
		t.Fatal("new key not stored")
	}
}

func TestEvictPrefersFullBudgets(t *testing.T) {
	t.Parallel()
	s := &shard{tats: map[uint64]int64{1: 50, 2: 500, 3: 300}}
	s.evict(100) // key 1 is back to a full budget
	if _, ok := s.tats[1]; ok || len(s.tats) != 2 {
		t.Fatalf("after evict: %v", s.tats)
	}
	s.evict(100) // none idle: drop the closest to full (300)
	if _, ok := s.tats[3]; ok || len(s.tats) != 1 {
		t.Fatalf("after second evict: %v", s.tats)
	}
}

func TestMemoryConcurrentExact(t *testing.T) {
	t.Parallel()
	m := NewMemory(1 << 16)
	a, b := req("a", 50, time.Hour, 10), req("b", 1000, time.Hour, 0)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			res := make([]Result, 2)
			for range 200 {
				if ok, _ := m.Allow(context.Background(), []Request{a, b}, res); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n != 60 {
		t.Fatalf("admitted %d of 3200, want exactly limit+burst = 60", n)
	}
}

func TestConcurrencySlots(t *testing.T) {
	t.Parallel()
	m := NewMemory(10)
	key := []byte("route")
	s1, ok1 := m.Acquire(key, 2)
	s2, ok2 := m.Acquire(key, 2)
	if _, ok3 := m.Acquire(key, 2); !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire results %v %v %v, want true true false", ok1, ok2, ok3)
	}
	m.Release(s1)
	if m.InFlight(key) != 1 {
		t.Fatalf("in flight %d", m.InFlight(key))
	}
	s3, ok := m.Acquire(key, 2)
	if !ok {
		t.Fatal("slot not returned")
	}
	m.Release(s2)
	m.Release(s3)
	if n := len(m.shards[shardOf(s3.h)].inflight); n != 0 {
		t.Fatalf("%d in-flight entries left after all releases", n)
	}
}

func TestGCRAOverflowSafe(t *testing.T) {
	t.Parallel()
	_, r := gcra(1, 0, int64(365*24*time.Hour), 2_000_000_000)
	if !r.Allowed || r.Remaining <= 0 {
		t.Fatalf("huge capacity: %+v", r)
	}
}

func TestAcquireMemoryShared(t *testing.T) {
	t.Parallel()
	built := 0
	reg := map[string]any{}
	acq := func(key string, build func() (io.Closer, error)) (io.Closer, error) {
		if v, ok := reg[key]; ok {
			return v.(io.Closer), nil
		}
		built++
		v, err := build()
		reg[key] = v
		return v, err
	}
	a, _ := AcquireMemory(acq, 10)
	b, _ := AcquireMemory(acq, 10)
	c, _ := AcquireMemory(acq, 20)
	if a != b || a == c || built != 2 {
		t.Fatalf("sharing wrong: a==b %v a==c %v built %d", a == b, a == c, built)
	}
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := NewMemory(1 << 20)
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("limits=%d", n), func(b *testing.B) {
			reqs := make([]Request, n)
			for i := range reqs {
				reqs[i] = req(fmt.Sprintf("rl:6:global:%d:ip=10.0.0.1;", i), 1_000_000_000, time.Second, 0)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				res := make([]Result, n)
				for pb.Next() {
					_, _ = m.Allow(context.Background(), reqs, res)
				}
			})
		})
	}
}
