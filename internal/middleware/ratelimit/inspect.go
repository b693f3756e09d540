package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
	"github.com/gatehouse/gatehouse/internal/store"
)

// ErrInvalidKey is wrapped by Inspector errors about the key's syntax.
var ErrInvalidKey = errors.New("invalid rate-limit key")

// Inspector reads the rate-limit state of one identity across the limits of one compiled
// config, without counting anything. A Runtime builds one at compile time (NewInspector); the
// admin API asks the current Runtime's.
//
// An identity is written as one or more parts joined by "+" (or a space, which is what an
// unencoded "+" in a URL query becomes):
//
//	ip:203.0.113.7   user:42   issuer:main+user:42   consumer:partner-a   header:X-Tenant=acme
//	route:orders     service:users
//	consumer:partner-a+route:orders
//
// A JWT user is counted per issuer (the issuer's name in auth.issuers): give it with issuer:,
// as user:42 alone is the subject an issuer-less method (forward auth) reports.
// A limit is reported when every part of its key can be filled from the identity. As when
// requests are counted, a missing user, consumer or header is filled by the ip part if one is
// given (the limit then shows the counter of anonymous requests from that address). route and
// service parts also narrow the answer to limits that apply on that route or service; without
// them a limit keyed by route (or service) is reported once per route (service) it applies to.
// Limits restricted to tiers are reported whatever the caller's tier; State.Tiers says which.
type Inspector struct {
	entries []inspected
	mem     *store.Memory
	redis   *store.Redis
}

// inspected is one configured limit with the routes it applies to.
type inspected struct {
	l      *limit
	scope  string
	per    time.Duration
	burst  int64
	routes []routeRef
}

type routeRef struct{ route, service string }

// State is one limit's state for an identity.
type State struct {
	// Limit is the limit's name.
	Limit string
	// Scope is where the limit is configured: "global", "service:<name>" or "route:<name>".
	Scope string
	// Counter is the identity the counter counts, in the key syntax: the parts of the limit's
	// key filled from the identity asked about (e.g. "ip:203.0.113.7" for a user limit asked
	// about an address only).
	Counter string
	// Store is "memory" (this gateway's count) or "redis" (shared by all replicas).
	Store string
	// Max is the limit: requests per Window.
	Max int64
	// Burst is how many requests beyond Max an idle key may send at once.
	Burst int64
	// Window is the limit's period.
	Window time.Duration
	// Tiers are the consumer tiers the limit applies to (nil: every caller).
	Tiers []string
	// Remaining is how many requests the identity may make now (up to Max + Burst).
	Remaining int64
	// ResetAfter is how long until the identity's budget is full again.
	ResetAfter time.Duration
	// Err is set when the store could not be read; Remaining and ResetAfter are then zero.
	Err error
}

// NewInspector builds the Inspector of cfg's limits. It acquires the same stores as the
// middleware through deps.Acquire, so it shares their counters (and, tied to the Runtime that
// built it, releases them with it).
func NewInspector(cfg *config.Config, deps middleware.Deps) (*Inspector, error) {
	in := &Inspector{}
	var all []routeRef
	byService := map[string][]routeRef{}
	for i := range cfg.Routes {
		r := routeRef{route: cfg.Routes[i].Name, service: cfg.Routes[i].Service}
		all = append(all, r)
		byService[r.service] = append(byService[r.service], r)
	}
	add := func(scope string, ls []config.RateLimit, routes []routeRef) {
		if len(routes) == 0 {
			return // a limit that no route applies never counts anything
		}
		for i := range ls {
			in.entries = append(in.entries, inspected{l: compileLimit(scope, &ls[i]), scope: scope,
				per: ls[i].Per.Duration, burst: int64(ls[i].Burst), routes: routes})
		}
	}
	add("global", cfg.RateLimits, all)
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		add("service:"+svc.Name, svc.RateLimits, byService[svc.Name])
	}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		add("route:"+rc.Name, rc.Plugins.RateLimit, []routeRef{{rc.Name, rc.Service}})
	}
	if len(in.entries) == 0 {
		return in, nil
	}
	var err error
	if in.mem, err = store.AcquireMemory(deps.Acquire, cfg.Store.Memory.MaxKeys); err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	for _, e := range in.entries {
		if e.l.redis && in.redis == nil {
			if cfg.Store.Redis == nil {
				return nil, fmt.Errorf("limit %q: store is redis but store.redis is not configured", e.l.name)
			}
			if in.redis, err = store.AcquireRedis(deps.Acquire, cfg.Store.Redis, deps.Logger); err != nil {
				return nil, fmt.Errorf("redis store: %w", err)
			}
		}
	}
	return in, nil
}

// identity is a parsed inspection key.
type identity struct {
	ip                   netip.Addr
	ipText               string
	user, issuer         string
	consumer             string
	route, service       string
	hasRoute, hasService bool
	headers              http.Header
}

var keyKinds = []string{"ip:", "user:", "issuer:", "consumer:", "header:", "route:", "service:"}

// splitKey splits key at every "+" or space that starts a new part (one followed by a known
// kind), so values may themselves contain "+" or spaces ("user:a+b@example.com").
func splitKey(key string) []string {
	var out []string
	start := 0
	for i := 0; i < len(key); i++ {
		if key[i] != '+' && key[i] != ' ' {
			continue
		}
		rest := key[i+1:]
		for _, k := range keyKinds {
			if strings.HasPrefix(rest, k) {
				out = append(out, key[start:i])
				start = i + 1
				break
			}
		}
	}
	return append(out, key[start:])
}

// parseKey parses an inspection key (see Inspector). Errors wrap ErrInvalidKey.
func parseKey(key string) (*identity, error) {
	id := &identity{headers: http.Header{}}
	seen := map[string]bool{}
	for _, p := range splitKey(strings.TrimSpace(key)) {
		kind, v, ok := strings.Cut(p, ":")
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: %q is not kind:value (kinds: ip, user, issuer, consumer, header, route, service)", ErrInvalidKey, p)
		}
		if kind != "header" && seen[kind] {
			return nil, fmt.Errorf("%w: %s given twice", ErrInvalidKey, kind)
		}
		seen[kind] = true
		switch kind {
		case "ip":
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %q is not an IP address", ErrInvalidKey, v)
			}
			id.ip, id.ipText = a.Unmap(), a.Unmap().String()
		case "user":
			id.user = v
		case "issuer":
			id.issuer = v
		case "consumer":
			id.consumer = v
		case "route":
			id.route, id.hasRoute = v, true
		case "service":
			id.service, id.hasService = v, true
		case "header":
			name, val, ok := strings.Cut(v, "=")
			if !ok || name == "" || val == "" {
				return nil, fmt.Errorf("%w: write a header part as header:<Name>=<value>", ErrInvalidKey)
			}
			name = textproto.CanonicalMIMEHeaderKey(name)
			if _, dup := id.headers[name]; dup {
				return nil, fmt.Errorf("%w: header %s given twice", ErrInvalidKey, name)
			}
			id.headers[name] = []string{val}
		default:
			return nil, fmt.Errorf("%w: unknown kind %q (kinds: ip, user, issuer, consumer, header, route, service)", ErrInvalidKey, kind)
		}
	}
	if id.issuer != "" && id.user == "" {
		return nil, fmt.Errorf("%w: issuer: names whose user; add user:<subject>", ErrInvalidKey)
	}
	return id, nil
}

// counter returns the display form of the identity l counts on route r, or false when a part
// of l's key cannot be filled from id.
func (id *identity) counter(parts []part, r routeRef) (string, bool) {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('+')
		}
		var s string
		switch p.kind {
		case partUser:
			if id.user != "" {
				s = "user:" + id.user
				if id.issuer != "" {
					s = "issuer:" + id.issuer + "+" + s
				}
			}
		case partConsumer:
			if id.consumer != "" {
				s = "consumer:" + id.consumer
			}
		case partHeader:
			if vs := id.headers[p.header]; len(vs) > 0 {
				s = "header:" + p.header + "=" + vs[0]
			}
		case partRoute:
			s = "route:" + r.route
		case partService:
			s = "service:" + r.service
		}
		if s == "" { // ip, or the fallback to it
			if !id.ip.IsValid() {
				return "", false
			}
			s = "ip:" + id.ipText
		}
		b.WriteString(s)
	}
	return b.String(), true
}

// State returns the state of every limit counting the identity key (see Inspector for the
// syntax), in config order: global limits, then service, then route limits. A store that
// cannot be read is reported in the State of each affected limit, never as an error; the
// error is only for a malformed key (wrapping ErrInvalidKey).
func (in *Inspector) State(ctx context.Context, key string) ([]State, error) {
	id, err := parseKey(key)
	if err != nil {
		return nil, err
	}
	if in == nil {
		return nil, nil
	}
	req := &http.Request{Header: id.headers}
	info := &httpx.Info{ClientIP: id.ip, Identity: &httpx.Identity{Subject: id.user, Issuer: id.issuer, Consumer: id.consumer}}
	var (
		out            []State
		memIdx, redIdx []int
		memReq, redReq []store.Request
		seen           = map[string]bool{}
	)
	for _, e := range in.entries {
		for _, r := range e.routes {
			if id.hasRoute && r.route != id.route || id.hasService && r.service != id.service {
				continue
			}
			display, ok := id.counter(e.l.parts, r)
			if !ok {
				continue
			}
			h := handler{route: r.route, service: r.service}
			k := h.appendKey(nil, e.l.prefix, e.l.parts, req, info)
			if seen[string(k)] {
				continue // e.g. a global ip limit: one counter whatever the route
			}
			seen[string(k)] = true
			st := State{Limit: e.l.name, Scope: e.scope, Counter: display, Store: config.StoreMemory,
				Max: int64(e.l.quota), Burst: e.burst, Window: e.per, Tiers: e.l.tiers}
			q := store.Request{Key: k, Interval: e.l.interval, Capacity: e.l.capacity}
			if e.l.redis {
				st.Store = config.StoreRedis
				redIdx, redReq = append(redIdx, len(out)), append(redReq, q)
			} else {
				memIdx, memReq = append(memIdx, len(out)), append(memReq, q)
			}
			out = append(out, st)
		}
	}
	if len(memReq) > 0 {
		res := make([]store.Result, len(memReq))
		in.mem.Peek(memReq, res)
		for i, j := range memIdx {
			out[j].Remaining, out[j].ResetAfter = res[i].Remaining, res[i].Reset
		}
	}
	if len(redReq) > 0 {
		res := make([]store.Result, len(redReq))
		errs := in.redis.Peek(ctx, redReq, res)
		for i, j := range redIdx {
			if errs[i] != nil {
				out[j].Err = errs[i]
				continue
			}
			out[j].Remaining, out[j].ResetAfter = res[i].Remaining, res[i].Reset
		}
	}
	return out, nil
}
