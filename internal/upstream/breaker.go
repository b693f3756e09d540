package upstream

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerConfig configures a circuit breaker. See config.CircuitBreaker for the user-facing
// meaning of each field.
type BreakerConfig struct {
	// FailureThreshold opens the breaker after this many consecutive failures (0: rule off).
	FailureThreshold int
	// FailurePercent opens it when this percentage of the attempts that finished in Window
	// failed, once MinRequests attempts finished there (0: rule off). Canceled attempts and
	// attempts still in flight do not count.
	FailurePercent int
	MinRequests    int
	Window         time.Duration
	// RecoveryTimeout is how long the breaker stays open before going half-open.
	RecoveryTimeout time.Duration
	// HalfOpenRequests is how many probes a half-open breaker admits; that many successes close it.
	HalfOpenRequests int
	// FailureOn says which attempt outcomes are failures.
	FailureOn Conditions
	// PerTarget keeps one breaker per Target instead of one per Service.
	PerTarget bool
}

// BreakerState is a circuit breaker's state.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"
	BreakerOpen     BreakerState = "open"
	BreakerHalfOpen BreakerState = "half_open"
)

// OpenError is returned when a circuit breaker refuses an attempt. The request was not sent.
type OpenError struct {
	// Service is the service whose breaker is open.
	Service string
	// RetryAfter is how long until the breaker admits probe requests again (at least 1s).
	RetryAfter time.Duration
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("circuit breaker of service %s is open", e.Service)
}

// errFailedAttempt is what a failed attempt reports to gobreaker; errCanceledAttempt is excluded
// from its counts.
var (
	errFailedAttempt   = errors.New("attempt failed")
	errCanceledAttempt = errors.New("attempt canceled")
)

// Breaker is one circuit breaker, built on gobreaker's TwoStepCircuitBreaker. It is safe for
// concurrent use and long-lived: it is kept across reloads while its config is unchanged.
type Breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	cfg      BreakerConfig
	openedAt atomic.Int64 // Unix nanoseconds of the last transition to open
}

// NewBreaker builds a closed Breaker.
func NewBreaker(name string, cfg BreakerConfig) *Breaker {
	b := &Breaker{cfg: cfg}
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: uint32(max(cfg.HalfOpenRequests, 1)),
		Timeout:     cfg.RecoveryTimeout,
		ReadyToTrip: b.readyToTrip,
		IsExcluded:  func(err error) bool { return err == errCanceledAttempt },
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
			}
		},
	}
	if cfg.FailurePercent > 0 && cfg.Window > 0 {
		// A rolling window of ten buckets; gobreaker clears the counts bucket by bucket.
		st.Interval = cfg.Window
		st.BucketPeriod = max(cfg.Window/10, time.Millisecond)
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
	return b
}

func (b *Breaker) readyToTrip(c gobreaker.Counts) bool {
	if b.cfg.FailureThreshold > 0 && int(c.ConsecutiveFailures) >= b.cfg.FailureThreshold {
		return true
	}
	if b.cfg.FailurePercent > 0 {
		// Finished attempts only: gobreaker counts a request when it is allowed, and attempts
		// still in flight (no outcome yet) would dilute the ratio and fill min_requests.
		n := int(c.TotalSuccesses) + int(c.TotalFailures)
		if n >= max(b.cfg.MinRequests, 1) && int(c.TotalFailures)*100 >= b.cfg.FailurePercent*n {
			return true
		}
	}
	return false
}

// Allow asks the breaker for an attempt. It returns a done function to call exactly once with
// the attempt's outcome, or an *OpenError when the breaker is open (or half-open with all its
// probes in flight).
func (b *Breaker) Allow(service string) (func(f Failure, status int), error) {
	done, err := b.cb.Allow()
	if err != nil {
		retry := time.Second
		if opened := b.openedAt.Load(); opened != 0 {
			if left := time.Until(time.Unix(0, opened).Add(b.cfg.RecoveryTimeout)); left > retry {
				retry = left
			}
		}
		return nil, &OpenError{Service: service, RetryAfter: retry}
	}
	return func(f Failure, status int) {
		switch {
		case f == Canceled:
			done(errCanceledAttempt)
		case b.cfg.FailureOn.Match(f, status):
			done(errFailedAttempt)
		default:
			done(nil)
		}
	}, nil
}

// State returns the breaker's state.
func (b *Breaker) State() BreakerState {
	switch b.cb.State() {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	default:
		return BreakerClosed
	}
}
