// Package upstream holds the Targets of a Service and the state shared across reloads to reach
// them: balancers, health, circuit breakers and transports.
package upstream

import (
	"net/url"
	"sync/atomic"
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
	// down is the inverse of healthy so that the zero value of Target is healthy.
	down atomic.Bool
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

// Healthy reports whether t may receive traffic. A new Target is healthy.
func (t *Target) Healthy() bool { return !t.down.Load() }

// SetHealthy marks t healthy or unhealthy; balancers skip unhealthy Targets. It is used by active
// health checks and passive outlier ejection.
func (t *Target) SetHealthy(healthy bool) { t.down.Store(!healthy) }

// String returns the Target's URL, or "<nil>" when it has none.
func (t *Target) String() string {
	if t.URL == nil {
		return "<nil>"
	}
	return t.URL.String()
}
