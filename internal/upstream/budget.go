package upstream

import (
	"sync"
	"time"
)

// budgetBuckets is the resolution of a RetryBudget's rolling window.
const budgetBuckets = 10

// RetryBudget caps retries to a share of requests over a rolling window (Finagle's and Linkerd's
// retry budget): a retry is allowed while retries < MinRetries + Percent% of requests in the
// window. It keeps a failing service from being hit with a retry storm: when every request
// fails, the load grows by at most Percent% instead of by the attempt count. It is safe for
// concurrent use; one lock guards a few counters, and only services with retries use it.
type RetryBudget struct {
	percent    int64
	minRetries int64
	bucket     time.Duration
	now        func() time.Time

	mu       sync.Mutex
	epoch    int64 // index of the newest bucket (time / bucket)
	requests [budgetBuckets]int64
	retries  [budgetBuckets]int64
}

// NewRetryBudget returns a budget allowing minRetries plus percent% of the requests in each
// rolling window.
func NewRetryBudget(percent, minRetries int, window time.Duration) *RetryBudget {
	return &RetryBudget{
		percent:    int64(percent),
		minRetries: int64(minRetries),
		bucket:     max(window/budgetBuckets, time.Millisecond),
		now:        time.Now,
	}
}

// advance moves the window to now, clearing buckets that fell out of it. b.mu must be held.
func (b *RetryBudget) advance() int {
	e := b.now().UnixNano() / int64(b.bucket)
	if d := e - b.epoch; d > 0 {
		if d > budgetBuckets {
			d = budgetBuckets
		}
		for k := int64(1); k <= d; k++ {
			i := (b.epoch + k) % budgetBuckets
			b.requests[i], b.retries[i] = 0, 0
		}
		b.epoch = e
	}
	return int(b.epoch % budgetBuckets)
}

// Request records one request (not a retry).
func (b *RetryBudget) Request() {
	b.mu.Lock()
	b.requests[b.advance()]++
	b.mu.Unlock()
}

// TryRetry reports whether a retry fits the budget and, if so, records it.
func (b *RetryBudget) TryRetry() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.advance()
	var reqs, rets int64
	for k := range budgetBuckets {
		reqs += b.requests[k]
		rets += b.retries[k]
	}
	// rets+1 <= min + percent*reqs/100, without division.
	if (rets+1-b.minRetries)*100 > b.percent*reqs {
		return false
	}
	b.retries[i]++
	return true
}

// Counts returns the requests and retries in the current window.
func (b *RetryBudget) Counts() (requests, retries int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance()
	for k := range budgetBuckets {
		requests += b.requests[k]
		retries += b.retries[k]
	}
	return requests, retries
}
