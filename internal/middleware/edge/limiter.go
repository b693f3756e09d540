package edge

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// ipLimiter is a small GCRA limiter per client (IPv4 address or IPv6 /64) for the bot
// rate_limit action. It is bounded: each shard holds at most max/shards keys and, when full,
// drops the key whose budget would have refilled first (an idle client loses nothing by being
// forgotten).
type ipLimiter struct {
	interval  time.Duration // emission interval: per / limit
	tolerance time.Duration // burst * interval
	shards    [16]ipShard
	perShard  int
	seed      maphash.Seed
	now       func() time.Time
}

type ipShard struct {
	mu  sync.Mutex
	tat map[netip.Addr]time.Time // theoretical arrival time per clientKey
}

func newIPLimiter(limit int, per time.Duration, burst, max int) *ipLimiter {
	l := &ipLimiter{interval: per / time.Duration(limit), perShard: max/16 + 1, seed: maphash.MakeSeed(), now: time.Now}
	l.tolerance = time.Duration(burst) * l.interval
	for i := range l.shards {
		l.shards[i].tat = map[netip.Addr]time.Time{}
	}
	return l
}

// allow admits one request from ip, or returns the seconds to wait. IPv6 clients share one
// budget per /64 (see clientKey), so rotating through a prefix does not reset it.
func (l *ipLimiter) allow(ip netip.Addr) (bool, int) {
	ip = clientKey(ip)
	b := ip.As16()
	s := &l.shards[maphash.Bytes(l.seed, b[:])%16]
	now := l.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.tat[ip]
	if !ok || tat.Before(now) {
		tat = now
	}
	next := tat.Add(l.interval)
	if allowAt := next.Add(-l.interval - l.tolerance); allowAt.After(now) {
		return false, int(allowAt.Sub(now)/time.Second) + 1
	}
	if !ok && len(s.tat) >= l.perShard {
		l.evict(s, now)
	}
	s.tat[ip] = next
	return true, 0
}

func (l *ipLimiter) evict(s *ipShard, now time.Time) {
	var oldest netip.Addr
	var oldestT time.Time
	first := true
	for k, t := range s.tat {
		if t.Before(now) {
			delete(s.tat, k)
			return
		}
		if first || t.Before(oldestT) {
			oldest, oldestT, first = k, t, false
		}
	}
	delete(s.tat, oldest)
}

// Close implements io.Closer (nothing to release).
func (l *ipLimiter) Close() error { return nil }
