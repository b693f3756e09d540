// Package upstream holds the Targets of a Service and the state shared across reloads to reach
// them: balancers, health, circuit breakers and transports.
package upstream

import (
	"net/url"
	"sync/atomic"
	"time"
)

// MaxWeight is the largest Target weight a Balancer accepts. The bound keeps the weighted
// arithmetic of the balancers (in-flight × weight, sums of weights) far from overflow.
const MaxWeight = 1_000_000

// Target is one upstream endpoint of a Service.
//
// URL and Weight are set at construction and must not change once the Target is handed to a
// Balancer; the in-flight count and the health flag are safe for concurrent use.
type Target struct {
	// URL is the endpoint requests are proxied to.
	URL *url.URL
	// Weight is the Target's share of traffic relative to the other Targets of its Service, from 1
	// to MaxWeight. Balancers that are not weight-aware (round_robin) ignore it.
	Weight int

	inFlight atomic.Int64
	// down is the active health check verdict, inverted so that the zero value of Target is
	// healthy.
	down atomic.Bool
	// checkers counts the active health checkers probing the Target; the last one to stop
	// marks it healthy again, so a verdict does not outlive its checker.
	checkers atomic.Int32

	// Passive health (outlier ejection) state; see PassiveHealth.
	consecutiveFailures atomic.Int32
	ejections           atomic.Int32
	// ejectedUntil is the Unix time in nanoseconds when the current ejection ends; 0: none.
	ejectedUntil atomic.Int64
	// lastEjectionEnd is when the latest ejection ended (or will end), in Unix nanoseconds.
	lastEjectionEnd atomic.Int64
}

// NewTarget returns a healthy Target with no request in flight. A weight outside [1, MaxWeight]
// is clamped into that range; configuration validation is expected to reject such weights first.
func NewTarget(u *url.URL, weight int) *Target {
	return &Target{URL: u, Weight: clampWeight(weight)}
}

func clampWeight(w int) int {
	switch {
	case w < 1:
		return 1
	case w > MaxWeight:
		return MaxWeight
	default:
		return w
	}
}

// Acquire records that a request attempt to t has started. Every Acquire must be paired with
// exactly one Release when the attempt ends.
func (t *Target) Acquire() { t.inFlight.Add(1) }

// Release records that a request attempt to t has ended.
func (t *Target) Release() { t.inFlight.Add(-1) }

// InFlight returns the number of request attempts to t currently in progress.
func (t *Target) InFlight() int64 { return t.inFlight.Load() }

// Healthy reports whether t may receive traffic: the active health check (SetHealthy) finds it
// healthy and passive health checking has not ejected it. A new Target is healthy.
func (t *Target) Healthy() bool { return !t.down.Load() && !t.Ejected() }

// SetHealthy records the active health check verdict; balancers skip unhealthy Targets.
func (t *Target) SetHealthy(healthy bool) { t.down.Store(!healthy) }

// ActiveHealthy reports the active health check verdict alone, ignoring ejection.
func (t *Target) ActiveHealthy() bool { return !t.down.Load() }

// Ejected reports whether passive health checking has taken t out of rotation.
func (t *Target) Ejected() bool {
	until := t.ejectedUntil.Load()
	if until == 0 {
		return false
	}
	if time.Now().UnixNano() < until {
		return true
	}
	// The ejection is over: clear it so later checks skip the clock.
	t.ejectedUntil.CompareAndSwap(until, 0)
	return false
}

// EjectedUntil returns when t's current ejection ends, or the zero time when it is not ejected.
func (t *Target) EjectedUntil() time.Time {
	until := t.ejectedUntil.Load()
	if until == 0 || time.Now().UnixNano() >= until {
		return time.Time{}
	}
	return time.Unix(0, until)
}

// String returns the Target's URL, or "<nil>" when it has none.
func (t *Target) String() string {
	if t.URL == nil {
		return "<nil>"
	}
	return t.URL.String()
}
