// Package httpx holds the per-request state and the small HTTP helpers shared by the router,
// middleware and proxy: the request Info carried in the context, JSON errors, client IP
// resolution through trusted proxies, and request IDs.
package httpx

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

type infoKey struct{}

// Info is the gateway's state for one request. It is created once per request by the edge
// handler, filled in as the request moves through routing, middleware and proxying, and read
// by the access log. Only the goroutine serving the request touches it.
type Info struct {
	// RequestID is the validated client-supplied or generated correlation ID.
	RequestID string
	// ClientIP is the client address, resolved through trusted proxies only.
	ClientIP netip.Addr
	// PeerTrusted reports whether the direct peer is a trusted proxy.
	PeerTrusted bool
	// Peer is the direct peer's address, parsed from the request's RemoteAddr once, and
	// PeerText its text (AddrString), for the forwarding headers and the access log.
	Peer     netip.Addr
	PeerText string
	// Path is the normalized (still percent-encoded) request path used for routing.
	Path string
	// Route and Service name what served the request ("" before routing).
	Route   string
	Service string
	// Target is the upstream chosen for the last attempt ("host:port").
	Target string
	// Match holds the route lookup result: path parameters and what "/**" matched.
	Match router.Match
	// UpstreamTarget is the target of the current attempt.
	UpstreamTarget *upstream.Target
	// UpstreamStart is when the last upstream attempt started.
	UpstreamStart time.Time
	// UpstreamDuration is the time from sending the upstream request to its response headers.
	UpstreamDuration time.Duration
	// ErrorCode is the stable error code returned to the client, if any.
	ErrorCode string
	// Identity is who the request was authenticated as (nil: anonymous).
	Identity *Identity
	// Country is the client's ISO country code from server.geo ("" when geo is off, "XX" when
	// unknown).
	Country string
	// Bot names the bot rule the client matched ("" for none).
	Bot string
	// CacheStatus is the response cache's verdict (HIT, MISS, STALE, REVALIDATED, BYPASS) on
	// routes that cache, for the metrics.
	CacheStatus string
	// RateLimit names the limit that decided the request and RateLimited whether it denied it
	// ("" on routes without limits).
	RateLimit   string
	RateLimited bool
	// Refusal, when authentication refused the request, writes its 401 or 403. The runtime's
	// chain counts such a request against the rate limits first (so guessing credentials is
	// throttled) and refuses it right after them.
	Refusal func(http.ResponseWriter, *http.Request)
}

// Identity is an authenticated caller, set by the authentication middleware and read by
// authorization, rate limiting, caching and aggregation.
type Identity struct {
	// Method is how the caller authenticated: "jwt", "api_key" or "forward_auth".
	Method string
	// Subject is the user: the JWT "sub" claim, or the user ID returned by forward auth.
	Subject string
	// Consumer is the configured consumer (API key owner), if any.
	Consumer string
	// Tier is the consumer's tier or group (selects per-tier rate limits).
	Tier string
	// Issuer names the JWT issuer config that verified the token.
	Issuer string
	// Permissions are the caller's granted permissions (from the configured claim).
	Permissions []string
	// Claims are the verified token claims (JWT) or the consumer metadata (API key).
	Claims map[string]any
}

// WithInfo returns a context carrying info.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// BindInfo stores info in the request's Scope itself, so InfoFrom finds it without a context
// per value; false means s could not take it (see reqctx.Scope.Set) and the caller must use
// WithInfo. Only the code that created s, or was handed it first, may call it.
func BindInfo(s *reqctx.Scope, info *Info) bool {
	return s.Set(infoKey{}, info)
}

// InfoFrom returns the request's Info, or nil outside the gateway's handler.
func InfoFrom(ctx context.Context) *Info {
	info, _ := ctx.Value(infoKey{}).(*Info)
	return info
}
