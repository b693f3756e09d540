package admin

import (
	"context"
	"errors"
	"time"
)

// The admin API reads other subsystems through these narrow interfaces, so wiring one in is a
// single field in Options. Until a subsystem provides its interface, its endpoint answers
// 501 not_implemented (or, for services, shows what the Runtime knows).

// StateSource reports the resilience state of services: circuit breakers and the health
// verdicts behind the targets' healthy flag.
type StateSource interface {
	// Services returns the state of every service that has any; services or targets missing
	// from the answer are shown with what the Runtime knows (healthy flag, in-flight count).
	Services() []ServiceState
}

// ServiceState is one service's resilience state.
type ServiceState struct {
	// Name is the service name.
	Name string `json:"name"`
	// Breaker is the service-wide circuit breaker state ("closed", "half_open", "open"), or ""
	// when the service has none or breakers are per target.
	Breaker string `json:"breaker,omitempty"`
	// Targets are per-target states, matched to the Runtime's targets by URL.
	Targets []TargetState `json:"targets,omitempty"`
}

// TargetState is one target's resilience state.
type TargetState struct {
	// URL is the target URL as configured.
	URL string `json:"url"`
	// Breaker is the target's circuit breaker state, if breakers are per target.
	Breaker string `json:"breaker,omitempty"`
	// Detail explains the health verdict, e.g. "ejected until 12:00:03 after 5 failures" or
	// "active check: 3 consecutive failures".
	Detail string `json:"detail,omitempty"`
}

// LimitInspector reads the rate-limit state of a key without consuming from it.
type LimitInspector interface {
	// LimitState returns the state of every limit counting key (as the rate limiter builds
	// keys, e.g. "user:42" or "ip:203.0.113.7"). An error wrapping ErrInvalidKey is a malformed
	// key (400); any other error means nothing could be read (502). A store that fails for
	// some limits only is reported in their LimitState.Error instead.
	LimitState(ctx context.Context, key string) ([]LimitState, error)
}

// ErrInvalidKey is wrapped by LimitInspector errors about the key itself.
var ErrInvalidKey = errors.New("invalid key")

// LimitState is one limit's state for a key.
type LimitState struct {
	// Limit names the limit (its config path or name).
	Limit string `json:"limit"`
	// Scope is where the limit is configured: "global", "service:<name>" or "route:<name>".
	Scope string `json:"scope,omitempty"`
	// Counter is the identity the limit's counter counts, e.g. "consumer:partner-a+route:orders".
	Counter string `json:"counter,omitempty"`
	// Store is "memory" or "redis".
	Store string `json:"store,omitempty"`
	// Max is the number of requests allowed per Window.
	Max int64 `json:"max"`
	// Burst is how many requests beyond Max an idle key may send at once.
	Burst int64 `json:"burst,omitempty"`
	// Window is the limit's period.
	Window time.Duration `json:"-"`
	// Tiers are the consumer tiers the limit applies to (empty: every caller).
	Tiers []string `json:"tiers,omitempty"`
	// Remaining is how many requests the key may still make now.
	Remaining int64 `json:"remaining"`
	// ResetAfter is when the key is back to its full allowance.
	ResetAfter time.Duration `json:"-"`
	// Error, when set, says why this limit's counter could not be read (Remaining and
	// ResetAfter are then unknown and left out of the JSON).
	Error string `json:"error,omitempty"`
}

// CachePurger removes entries from the response cache.
type CachePurger interface {
	// Purge removes the cached responses of route ("" for every route) whose key starts with
	// prefix ("" for all), and returns how many were removed.
	Purge(ctx context.Context, route, prefix string) (int, error)
}

// CacheKeyTagPurger is a CachePurger that also purges one URL (path and query, every variant)
// or every response tagged with a surrogate key.
type CacheKeyTagPurger interface {
	CachePurger
	PurgeKey(ctx context.Context, key string) (int, error)
	PurgeTag(ctx context.Context, tag string) (int, error)
}
