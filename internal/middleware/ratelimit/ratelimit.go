// Package ratelimit enforces stacked rate and concurrency limits per user, consumer, IP, header
// or route, in memory or in Redis.
//
// A route's limits are the global ones, its service's and its own, filtered by the caller's
// tier; a request must pass all of them. Each limit is GCRA (see config.RateLimit) over the
// store it names. Memory limits are decided first, in one atomic step, so a flood that they
// stop never reaches Redis; then all Redis limits are decided in one round trip. A request
// admitted by its memory limits but denied by a Redis limit has still been counted by the
// memory limits (and vice versa never happens).
package ratelimit

import (
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Error codes of this package's responses.
const (
	// CodeRateLimited is the error of a request over a rate limit (429).
	CodeRateLimited = "rate_limited"
	// CodeConcurrencyLimited is the error of a request over a concurrency limit (429).
	CodeConcurrencyLimited = "concurrency_limited"
)

// partKind is one component of a limit's key.
type partKind uint8

const (
	partIP partKind = iota
	partUser
	partConsumer
	partHeader
	partRoute
	partService
)

type part struct {
	kind   partKind
	header string // canonical header name for partHeader
}

// limit is one compiled rate limit.
type limit struct {
	name       string
	prefix     []byte // counter key prefix: scope and name, length-prefixed
	parts      []part
	tiers      []string // nil: every request
	interval   time.Duration
	capacity   int64
	quota      int
	redis      bool
	failClosed bool
	headers    string
	policyHdr  []string // this limit's RateLimit-Policy value (shared, never modified)
	quoted     string   // the name as a structured-field string
	quotaStr   string
}

type concurrency struct {
	prefix []byte
	parts  []part
	max    int64
}

// handler enforces one route's limits.
type handler struct {
	next    http.Handler
	limits  []*limit
	conc    *concurrency
	mem     *store.Memory
	redis   *store.Redis
	route   string
	service string
}

// scratch is the per-request working memory, pooled so that a request allocates little.
type scratch struct {
	buf     []byte
	spans   [][2]int
	lims    []*limit
	memReq  []store.Request
	memRes  []store.Result
	memLim  []*limit
	rReq    []store.Request
	rRes    []store.Result
	rLim    []*limit
	allRes  []store.Result
	allLims []*limit
}

var scratchPool = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, 256)} }}

// New builds the rate-limit middleware of route (nil when no limit applies to it).
func New(cfg *config.Config, route *config.Route, svc *config.Service, deps middleware.Deps) (middleware.Middleware, error) {
	h := &handler{route: route.Name}
	if svc != nil {
		h.service = svc.Name
	}
	add := func(scope string, ls []config.RateLimit) {
		for i := range ls {
			h.limits = append(h.limits, compileLimit(scope, &ls[i]))
		}
	}
	add("global", cfg.RateLimits)
	if svc != nil {
		add("service:"+svc.Name, svc.RateLimits)
	}
	add("route:"+route.Name, route.Plugins.RateLimit)
	if cl := route.Plugins.ConcurrencyLimit; cl != nil {
		key := cl.Key
		if len(key) == 0 {
			key = config.RateLimitKey{config.KeyRoute}
		}
		h.conc = &concurrency{prefix: counterPrefix("cc", "route:"+route.Name, ""), parts: compileParts(key), max: int64(cl.Max)}
	}
	if len(h.limits) == 0 && h.conc == nil {
		return nil, nil
	}
	var err error
	if h.mem, err = store.AcquireMemory(deps.Acquire, cfg.Store.Memory.MaxKeys); err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	for _, l := range h.limits {
		if l.redis && h.redis == nil {
			if cfg.Store.Redis == nil {
				return nil, fmt.Errorf("limit %q: store is redis but store.redis is not configured", l.name)
			}
			if h.redis, err = store.AcquireRedis(deps.Acquire, cfg.Store.Redis, deps.Logger); err != nil {
				return nil, fmt.Errorf("redis store: %w", err)
			}
		}
	}
	return func(next http.Handler) http.Handler {
		hh := *h
		hh.next = next
		return &hh
	}, nil
}

func counterPrefix(kind, scope, name string) []byte {
	return fmt.Appendf(nil, "%s:%d:%s:%d:%s:", kind, len(scope), scope, len(name), name)
}

func compileParts(key config.RateLimitKey) []part {
	parts := make([]part, 0, len(key))
	for _, k := range key {
		switch k {
		case config.KeyIP:
			parts = append(parts, part{kind: partIP})
		case config.KeyUser:
			parts = append(parts, part{kind: partUser})
		case config.KeyConsumer:
			parts = append(parts, part{kind: partConsumer})
		case config.KeyRoute:
			parts = append(parts, part{kind: partRoute})
		case config.KeyService:
			parts = append(parts, part{kind: partService})
		default:
			name, _ := strings.CutPrefix(k, config.KeyHeaderPrefix)
			parts = append(parts, part{kind: partHeader, header: textproto.CanonicalMIMEHeaderKey(name)})
		}
	}
	return parts
}

func compileLimit(scope string, c *config.RateLimit) *limit {
	per := c.Per.Duration
	l := &limit{
		name:       c.Name,
		prefix:     counterPrefix("rl", scope, c.Name),
		parts:      compileParts(c.Key),
		tiers:      c.Tiers,
		interval:   per / time.Duration(c.Limit),
		capacity:   int64(c.Limit) + int64(c.Burst),
		quota:      c.Limit,
		redis:      c.Store == config.StoreRedis,
		failClosed: c.OnError == config.FailClosed,
		headers:    c.Headers,
		quotaStr:   strconv.Itoa(c.Limit),
	}
	if l.interval < 1 {
		l.interval = 1
	}
	l.quoted = strconv.Quote(c.Name)
	l.policyHdr = []string{l.quoted + ";q=" + l.quotaStr + ";w=" + strconv.FormatInt(int64(per/time.Second), 10)}
	return l
}

// applies reports whether the limit covers a caller of identity id.
func (l *limit) applies(id *httpx.Identity) bool {
	if l.tiers == nil {
		return true
	}
	tier := config.TierAnonymous
	if id != nil {
		tier = id.Tier
	}
	for _, t := range l.tiers {
		if t == tier {
			return true
		}
	}
	return false
}

// appendKey appends the counter key of the request to b. A missing user, consumer or header
// falls back to the client IP, so an anonymous client cannot escape a limit.
func (h *handler) appendKey(b, prefix []byte, parts []part, r *http.Request, info *httpx.Info) []byte {
	b = append(b, prefix...)
	var id *httpx.Identity
	if info != nil {
		id = info.Identity
	}
	for _, p := range parts {
		var v string
		tag := byte('i')
		switch p.kind {
		case partUser:
			if id != nil && id.Subject != "" {
				tag, v = 'u', id.Subject
				if id.Issuer != "" {
					// A subject is unique only within its issuer: sub 42 of a partner's
					// issuer is not the main issuer's user 42 and has its own budget.
					b = append(b, 'j')
					b = appendValue(b, id.Issuer)
				}
			}
		case partConsumer:
			if id != nil && id.Consumer != "" {
				tag, v = 'c', id.Consumer
			}
		case partHeader:
			if vs := r.Header[p.header]; len(vs) > 0 && vs[0] != "" {
				tag, v = 'h', vs[0]
			}
		case partRoute:
			tag, v = 'r', h.route
		case partService:
			tag, v = 's', h.service
		}
		b = append(b, tag)
		if tag == 'i' {
			b = append(b, '=')
			if info != nil && info.ClientIP.IsValid() {
				b = info.ClientIP.AppendTo(b)
			}
		} else {
			b = appendValue(b, v)
		}
		b = append(b, ';')
	}
	return b
}

// appendValue writes a client-chosen value length-prefixed (so no two key lists encode alike);
// long values and ones with characters that mean something to Redis Cluster ({}) or to logs
// are replaced by a hash.
func appendValue(b []byte, v string) []byte {
	clean := len(v) <= 64
	for i := 0; clean && i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e || c == '{' || c == '}' {
			clean = false
		}
	}
	if !clean {
		f := fnv.New64a()
		_, _ = f.Write([]byte(v))
		b = append(b, '#')
		return strconv.AppendUint(b, f.Sum64(), 16)
	}
	b = strconv.AppendInt(b, int64(len(v)), 10)
	b = append(b, ':')
	return append(b, v...)
}

func (s *scratch) reset() {
	s.buf, s.spans, s.lims = s.buf[:0], s.spans[:0], s.lims[:0]
	s.memReq, s.memRes, s.memLim = s.memReq[:0], s.memRes[:0], s.memLim[:0]
	s.rReq, s.rRes, s.rLim = s.rReq[:0], s.rRes[:0], s.rLim[:0]
	s.allRes, s.allLims = s.allRes[:0], s.allLims[:0]
}

// ServeHTTP checks the request against every applicable limit, then serves it.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := httpx.InfoFrom(r.Context())
	if len(h.limits) > 0 && !h.checkRates(w, r, info) {
		return
	}
	if h.conc != nil {
		s := scratchPool.Get().(*scratch)
		s.buf = h.appendKey(s.buf[:0], h.conc.prefix, h.conc.parts, r, info)
		slot, ok := h.mem.Acquire(s.buf, h.conc.max)
		scratchPool.Put(s)
		if !ok {
			w.Header().Set("Retry-After", "1")
			httpx.WriteError(w, r, http.StatusTooManyRequests, CodeConcurrencyLimited, "too many concurrent requests; retry later")
			return
		}
		defer h.mem.Release(slot)
	}
	h.next.ServeHTTP(w, r)
}

// checkRates applies the rate limits; when it returns false the response has been written.
func (h *handler) checkRates(w http.ResponseWriter, r *http.Request, info *httpx.Info) bool {
	var id *httpx.Identity
	if info != nil {
		id = info.Identity
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.reset()
	for _, l := range h.limits {
		if !l.applies(id) {
			continue
		}
		start := len(s.buf)
		s.buf = h.appendKey(s.buf, l.prefix, l.parts, r, info)
		s.spans = append(s.spans, [2]int{start, len(s.buf)})
		s.lims = append(s.lims, l)
	}
	if len(s.lims) == 0 {
		return true
	}
	for i, l := range s.lims {
		q := store.Request{Key: s.buf[s.spans[i][0]:s.spans[i][1]], Interval: l.interval, Capacity: l.capacity}
		if l.redis {
			s.rReq, s.rLim = append(s.rReq, q), append(s.rLim, l)
		} else {
			s.memReq, s.memLim = append(s.memReq, q), append(s.memLim, l)
		}
	}
	ctx := r.Context()
	allowed := true
	if len(s.memReq) > 0 {
		s.memRes = grow(s.memRes, len(s.memReq))
		if len(s.rReq) == 0 {
			allowed, _ = h.mem.Allow(ctx, s.memReq, s.memRes)
		} else {
			// Redis decides next, counting as it decides: the memory limits are only looked at
			// now and counted once Redis admits the request, so a request Redis refuses uses
			// up none of them.
			h.mem.Peek(s.memReq, s.memRes)
			for _, res := range s.memRes {
				allowed = allowed && res.Allowed
			}
		}
	}
	redisChecked := allowed && len(s.rReq) > 0
	if redisChecked {
		s.rRes = grow(s.rRes, len(s.rReq))
		var err error
		allowed, err = h.redis.Allow(ctx, s.rReq, s.rRes)
		if err != nil {
			for _, l := range s.rLim {
				if l.failClosed {
					httpx.WriteError(w, r, http.StatusServiceUnavailable, httpx.CodeServiceUnavailable, "the rate-limit store is unavailable; retry later")
					return false
				}
			}
			// fail_open: the same limits, counted in this gateway's memory until Redis is back,
			// decided in one step with the memory limits, so that a refusal counts none of them.
			h.redis.NoteFallback()
			n := len(s.rReq)
			s.rReq = append(s.rReq, s.memReq...)
			s.rRes = grow(s.rRes, len(s.rReq))
			allowed, _ = h.mem.Allow(ctx, s.rReq, s.rRes)
			copy(s.memRes, s.rRes[n:])
			s.rReq, s.rRes = s.rReq[:n], s.rRes[:n]
		} else if allowed && len(s.memReq) > 0 {
			// A concurrent request may have taken the last memory token since the look: this
			// one is then refused, counted by Redis alone.
			allowed, _ = h.mem.Allow(ctx, s.memReq, s.memRes)
		}
	}
	if len(s.memReq) > 0 {
		s.allRes, s.allLims = append(s.allRes, s.memRes...), append(s.allLims, s.memLim...)
	}
	if redisChecked {
		s.allRes, s.allLims = append(s.allRes, s.rRes...), append(s.allLims, s.rLim...)
	}
	setHeaders(w.Header(), s.allLims, s.allRes, allowed)
	if info := httpx.InfoFrom(r.Context()); info != nil {
		info.RateLimit, info.RateLimited = decidingLimit(s.allLims, s.allRes, allowed), !allowed
	}
	if !allowed {
		httpx.WriteError(w, r, http.StatusTooManyRequests, CodeRateLimited, "rate limit exceeded; retry after the time in Retry-After")
	}
	return allowed
}

// decidingLimit names the limit that decided the request: the first that denied it, or the one
// with the fewest requests left.
func decidingLimit(lims []*limit, res []store.Result, allowed bool) string {
	best := -1
	for i := range res {
		if !allowed {
			if !res[i].Allowed {
				return lims[i].name
			}
			continue
		}
		if best < 0 || res[i].Remaining < res[best].Remaining {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return lims[best].name
}

func grow(s []store.Result, n int) []store.Result {
	if cap(s) < n {
		return make([]store.Result, n)
	}
	return s[:n]
}

// setHeaders writes the headers of the most restrictive limit: when denied, the denying limit
// with the longest wait; otherwise the one with the fewest requests left.
func setHeaders(h http.Header, lims []*limit, res []store.Result, allowed bool) {
	best := -1
	var retry time.Duration
	for i := range res {
		if !allowed {
			if !res[i].Allowed && res[i].RetryAfter >= retry {
				retry = res[i].RetryAfter
				if lims[i].headers != config.HeadersNone || best < 0 {
					best = i
				}
			}
			continue
		}
		if lims[i].headers == config.HeadersNone {
			continue
		}
		if best < 0 || res[i].Remaining < res[best].Remaining ||
			res[i].Remaining == res[best].Remaining && res[i].Reset > res[best].Reset {
			best = i
		}
	}
	if !allowed {
		h["Retry-After"] = []string{strconv.FormatInt(ceilSeconds(retry, 1), 10)}
	}
	if best < 0 || lims[best].headers == config.HeadersNone {
		return
	}
	l, q := lims[best], res[best]
	wait := q.Reset
	if !q.Allowed {
		wait = q.RetryAfter
	} else if q.Remaining == 0 && l.capacity < int64(math.MaxInt64/4)/int64(l.interval) {
		// Nothing left: report when the next request will be admitted rather than when the
		// whole budget is back.
		wait = max(0, q.Reset+l.interval-time.Duration(l.capacity)*l.interval)
	}
	t := ceilSeconds(wait, 0)
	// Direct map writes with canonical keys: Header.Set's canonicalization was most of the
	// middleware's cost.
	h["Ratelimit-Policy"] = l.policyHdr
	var buf [96]byte
	v := append(buf[:0], l.quoted...)
	v = append(v, ";r="...)
	v = strconv.AppendInt(v, q.Remaining, 10)
	v = append(v, ";t="...)
	v = strconv.AppendInt(v, t, 10)
	h["Ratelimit"] = []string{string(v)}
	if l.headers == config.HeadersLegacy {
		h["X-Ratelimit-Limit"] = []string{l.quotaStr}
		h["X-Ratelimit-Remaining"] = []string{strconv.FormatInt(q.Remaining, 10)}
		h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(t, 10)}
	}
}

// ceilSeconds rounds d up to whole seconds, at least least.
func ceilSeconds(d time.Duration, least int64) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, least)
}
