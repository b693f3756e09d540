package store

import (
	"context"
	"hash/maphash"
	"io"
	"strconv"
	"sync"
	"time"
)

const (
	shardBits = 8
	numShards = 1 << shardBits
	// evictSample bounds the work of making room in a full shard.
	evictSample = 32
)

// Memory is the in-process store: GCRA counters and in-flight counts in sharded maps. Keys are
// kept as 64-bit hashes (a collision, about 1 in 10^19 per pair, would merely make two keys
// share a budget). Counters take no memory once their budget is full again: such entries are
// dropped first when a shard is full, then the ones closest to full, so the number of tracked
// keys never exceeds MaxKeys whatever clients send. It is safe for concurrent use.
type Memory struct {
	seed     maphash.Seed
	perShard int
	now      func() int64
	shards   [numShards]shard
}

type shard struct {
	mu       sync.Mutex
	tats     map[uint64]int64
	inflight map[uint64]int64
	_        [40]byte // keep shards on separate cache lines
}

var _ Limiter = (*Memory)(nil)

// NewMemory returns a Memory store tracking at most maxKeys rate-limit keys.
func NewMemory(maxKeys int) *Memory {
	m := &Memory{seed: maphash.MakeSeed(), now: func() int64 { return time.Now().UnixNano() }}
	m.perShard = max(1, (maxKeys+numShards-1)/numShards)
	for i := range m.shards {
		m.shards[i].tats = make(map[uint64]int64)
		m.shards[i].inflight = make(map[uint64]int64)
	}
	return m
}

// AcquireMemory returns the Memory store shared by every Runtime with the same maxKeys, so a
// reload that keeps it keeps everyone's budget.
func AcquireMemory(acquire AcquireFunc, maxKeys int) (*Memory, error) {
	c, err := acquire("store/memory|max_keys="+strconv.Itoa(maxKeys), func() (io.Closer, error) {
		return NewMemory(maxKeys), nil
	})
	if err != nil {
		return nil, err
	}
	return c.(*Memory), nil
}

// Close implements io.Closer; the store holds nothing that needs closing.
func (m *Memory) Close() error { return nil }

// Len reports how many rate-limit keys are tracked (including ones already back to full).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tats)
		s.mu.Unlock()
	}
	return n
}

func (m *Memory) hash(key []byte) uint64 { return maphash.Bytes(m.seed, key) }

func shardOf(h uint64) int { return int(h >> (64 - shardBits)) }

// Allow implements Limiter. Every shard involved is locked (in index order, so two requests
// never deadlock) for the whole check-and-count, which makes the decision atomic.
func (m *Memory) Allow(_ context.Context, reqs []Request, res []Result) (bool, error) {
	var hbuf [8]uint64
	var ibuf [8]int
	hs, idx := hbuf[:0], ibuf[:0]
	for _, r := range reqs {
		h := m.hash(r.Key)
		hs = append(hs, h)
		idx = insertSorted(idx, shardOf(h))
	}
	for _, i := range idx {
		m.shards[i].mu.Lock()
	}
	now := m.now()
	allowed := true
	var tbuf [8]int64
	tats := tbuf[:0]
	for i, r := range reqs {
		s := &m.shards[shardOf(hs[i])]
		next, out := gcra(now, s.tats[hs[i]], int64(r.Interval), r.Capacity)
		res[i] = out
		tats = append(tats, next)
		allowed = allowed && out.Allowed
	}
	if allowed {
		for i := range reqs {
			m.shards[shardOf(hs[i])].store(hs[i], tats[i], now, m.perShard)
		}
	}
	for _, i := range idx {
		m.shards[i].mu.Unlock()
	}
	return allowed, nil
}

// Peek fills res with the state of each counter in reqs without counting anything (see
// Result: Remaining is how many requests the key may make now). res must have len(reqs)
// entries.
func (m *Memory) Peek(reqs []Request, res []Result) {
	now := m.now()
	for i, r := range reqs {
		h := m.hash(r.Key)
		s := &m.shards[shardOf(h)]
		s.mu.Lock()
		tat := s.tats[h]
		s.mu.Unlock()
		res[i] = peek(now, tat, int64(r.Interval), r.Capacity)
	}
}

// insertSorted adds v to the ascending set s.
func insertSorted(s []int, v int) []int {
	for i, x := range s {
		if x == v {
			return s
		}
		if x > v {
			s = append(s, 0)
			copy(s[i+1:], s[i:])
			s[i] = v
			return s
		}
	}
	return append(s, v)
}

// store records tat for h, making room first if the shard is full. The caller holds s.mu.
func (s *shard) store(h uint64, tat, now int64, limit int) {
	if _, ok := s.tats[h]; !ok && len(s.tats) >= limit {
		s.evict(now)
	}
	s.tats[h] = tat
}

// evict drops, among a sample of entries (map iteration starts at a random place), those whose
// budget is full again, or else the one closest to full.
func (s *shard) evict(now int64) {
	var victim uint64
	minTat, n, dropped := int64(0), 0, false
	for h, tat := range s.tats {
		if tat <= now {
			delete(s.tats, h)
			dropped = true
		} else if n == 0 || tat < minTat {
			victim, minTat = h, tat
		}
		if n++; n >= evictSample {
			break
		}
	}
	if !dropped && n > 0 {
		delete(s.tats, victim)
	}
}

// Slot is an acquired place in a concurrency limit; give it back with Release.
type Slot struct{ h uint64 }

// Acquire takes one of max in-flight places for key, or reports false when all are taken.
// Counts live only while requests are in flight, so they need no other bound.
func (m *Memory) Acquire(key []byte, limit int64) (Slot, bool) {
	h := m.hash(key)
	s := &m.shards[shardOf(h)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[h] >= limit {
		return Slot{}, false
	}
	s.inflight[h]++
	return Slot{h}, true
}

// Release gives back a place taken by Acquire.
func (m *Memory) Release(slot Slot) {
	s := &m.shards[shardOf(slot.h)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.inflight[slot.h]; n <= 1 {
		delete(s.inflight, slot.h)
	} else {
		s.inflight[slot.h] = n - 1
	}
}

// InFlight reports the in-flight count of key.
func (m *Memory) InFlight(key []byte) int64 {
	h := m.hash(key)
	s := &m.shards[shardOf(h)]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[h]
}
