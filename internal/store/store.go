// Package store holds the gateway's shared state behind narrow interfaces: the rate limiter
// (GCRA over many keys, checked all-or-nothing for one request) and in-flight counters, in two
// implementations: Memory (this process, sharded and bounded) and Redis (shared by every
// replica, one Lua script per request). Both are long-lived and shared across reloads through
// the runtime's resource registry (see Acquire*).
package store

import (
	"context"
	"errors"
	"io"
	"math"
	"time"
)

// Request is one limit to apply to a request.
type Request struct {
	// Key names the counter. It must be stable across processes (it is the Redis key, after
	// the configured prefix) and unique per limit and per counted value.
	Key []byte
	// Interval is the emission interval, period/limit: the steady time between two admitted
	// requests.
	Interval time.Duration
	// Capacity is how many requests an idle key may send at once (limit + burst, at least 1).
	Capacity int64
}

// Result is one limit's verdict.
type Result struct {
	// Allowed reports whether this limit had room for the request.
	Allowed bool
	// Remaining is how many more requests the limit would admit right now.
	Remaining int64
	// Reset is how long until the limit's budget is full again.
	Reset time.Duration
	// RetryAfter, when not Allowed, is how long until the limit admits one more request.
	RetryAfter time.Duration
}

// Limiter decides a request's limits atomically: the request is admitted only when every limit
// has room, and only then is it counted in each. res must have len(reqs) entries.
type Limiter interface {
	Allow(ctx context.Context, reqs []Request, res []Result) (allowed bool, err error)
}

// ErrUnavailable is wrapped by errors of a store that cannot answer (Redis down or too slow).
var ErrUnavailable = errors.New("store unavailable")

// AcquireFunc is middleware.Deps.Acquire: it returns a long-lived value shared across reloads,
// building it on first use.
type AcquireFunc func(key string, build func() (io.Closer, error)) (io.Closer, error)

// gcra applies the generic cell rate algorithm to one counter. tat is the stored theoretical
// arrival time (0: none), all times in nanoseconds. It returns the new tat to store when the
// request is admitted.
func gcra(now, tat int64, interval, capacity int64) (int64, Result) {
	if interval < 1 {
		interval = 1
	}
	if capacity < 1 {
		capacity = 1
	}
	tau := satMul(capacity, interval)
	if tat < now {
		tat = now
	}
	next := tat + interval
	if d := next - now; d > tau {
		return tat, Result{Allowed: false, Remaining: 0, Reset: time.Duration(tat - now), RetryAfter: time.Duration(d - tau)}
	}
	return next, Result{Allowed: true, Remaining: (tau - (next - now)) / interval, Reset: time.Duration(next - now)}
}

// peek reports the state of a counter without admitting a request: Remaining is how many
// requests would be admitted right now, Reset how long until the budget is full again, and,
// when nothing remains, RetryAfter how long until one more is admitted. Allowed reports
// whether the next request would pass.
func peek(now, tat int64, interval, capacity int64) Result {
	if interval < 1 {
		interval = 1
	}
	if capacity < 1 {
		capacity = 1
	}
	tau := satMul(capacity, interval)
	if tat < now {
		tat = now
	}
	// The next request is admitted when tat+interval-now <= tau.
	room := tau - (tat - now)
	res := Result{Remaining: max(0, room/interval), Reset: time.Duration(tat - now)}
	res.Allowed = res.Remaining > 0
	if !res.Allowed {
		res.RetryAfter = time.Duration(interval - room)
	}
	return res
}

// satMul multiplies without overflowing: huge products saturate at a quarter of MaxInt64, far
// beyond any period a config allows.
func satMul(a, b int64) int64 {
	const ceiling = math.MaxInt64 / 4
	if a != 0 && b > ceiling/a {
		return ceiling
	}
	return a * b
}
