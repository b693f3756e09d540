package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Store selects where shared state lives. The in-memory store always exists (it holds
// concurrency counts and the fail_open fallback of Redis limits); Redis is used when configured.
type Store struct {
	// Memory configures the gateway-local store. It survives reloads that do not change it.
	Memory MemoryStore `yaml:"memory"`
	// Redis, when set, makes Redis the default store of every rate limit, so that all gateway
	// replicas share the same counters. Leave it out for a single node.
	Redis *RedisStore `yaml:"redis"`
}

// MemoryStore configures the gateway-local limiter store.
type MemoryStore struct {
	// MaxKeys bounds how many rate-limit keys (e.g. distinct client IPs) are tracked at once.
	// When full, idle keys are dropped first, then the keys closest to a full budget, so a flood
	// of distinct keys cannot grow memory (about 40 bytes a key). Default: 1000000.
	MaxKeys int `yaml:"max_keys"`
}

// RedisStore configures the Redis server, Sentinel group or Cluster shared by all replicas.
// Give either url, or addrs (with master_name for Sentinel, or cluster: true for Cluster).
type RedisStore struct {
	// URL of a standalone Redis: "redis://[user:password@]host:6379/0" or "rediss://..." for TLS.
	URL string `yaml:"url"`
	// Addrs are host:port seed addresses: Sentinel nodes when master_name is set, Cluster nodes
	// when there are several or cluster is true, otherwise one standalone server.
	Addrs []string `yaml:"addrs"`
	// MasterName is the Sentinel master set name; setting it selects Sentinel mode.
	MasterName string `yaml:"master_name"`
	// Cluster forces Redis Cluster mode (needed when addrs holds a single seed node).
	// Default: false.
	Cluster bool `yaml:"cluster"`
	// Username for Redis ACL authentication (with addrs). Default: none.
	Username string `yaml:"username"`
	// Password for Redis authentication (with addrs); use "${REDIS_PASSWORD}". Default: none.
	Password string `yaml:"password"`
	// DB is the database number (standalone and Sentinel, with addrs). Default: 0.
	DB int `yaml:"db"`
	// TLS connects with TLS (with addrs; for url use the rediss:// scheme). Default: false.
	TLS bool `yaml:"tls"`
	// Timeout bounds every Redis call made for a request (connect, send, receive). When it
	// passes, each limit follows its on_error policy, so a stalled Redis delays a request by at
	// most this long. Default: 50ms.
	Timeout Duration `yaml:"timeout"`
	// RetryAfterError is how long Redis is bypassed after a failed call (limits follow their
	// on_error policy meanwhile); then the next request tries Redis again. Default: 1s.
	RetryAfterError Duration `yaml:"retry_after_error"`
	// PoolSize is the maximum number of connections per Redis node. Default: 10 per CPU.
	PoolSize int `yaml:"pool_size"`
	// KeyPrefix starts every key the gateway writes, so several gateways can share one Redis.
	// Default: "gatehouse:".
	KeyPrefix string `yaml:"key_prefix"`
}

// RateLimit is one limit: requests sharing the same key get limit requests per per, plus a
// burst. The algorithm is GCRA (a token bucket): an idle key may send limit + burst requests at
// once, after which requests are admitted one every per/limit, so in any span of time t at most
// limit + burst + t*limit/per requests pass; there are no window edges at which a client can
// double its budget.
type RateLimit struct {
	// Name identifies the limit in the RateLimit-Policy header and in logs, and names its
	// counters, which survive a reload as long as the scope (global, service or route) and the
	// name stay the same. Unique within its list. Default: the key joined with "+", e.g.
	// "consumer+route".
	Name string `yaml:"name"`
	// Key is what requests are counted by: one of ip (the client IP, through
	// server.trusted_proxies only), user (the authenticated subject; a jwt's per issuer),
	// consumer (the API-key consumer), header:<Name> (a request header's value), route, service,
	// or a list of them for
	// a combination, e.g. [consumer, route]. A request without a user, consumer or header is
	// counted by its client IP instead, so leaving them out does not escape the limit.
	// Required.
	Key RateLimitKey `yaml:"key"`
	// Limit is the number of requests allowed per period. Required, at least 1.
	Limit int `yaml:"limit"`
	// Per is the period, a whole number of seconds: "1s", "1m", "1h". Required.
	Per Duration `yaml:"per"`
	// Burst is how many requests beyond limit an idle key may send at once. Default: 0.
	Burst int `yaml:"burst"`
	// Tiers restricts the limit to authenticated callers of these consumer tiers; "anonymous"
	// stands for unauthenticated requests. Default: every request.
	Tiers []string `yaml:"tiers"`
	// Store holds this limit's counters: "memory" (this gateway only) or "redis" (shared by all
	// replicas; needs store.redis). Default: redis when store.redis is set, otherwise memory.
	Store string `yaml:"store"`
	// OnError decides what happens when Redis fails or times out: "fail_open" counts the
	// request in this gateway's memory store instead (logged), "fail_closed" answers 503.
	// Default: fail_open.
	OnError string `yaml:"on_error"`
	// Headers selects the rate-limit headers this limit contributes when it is the most
	// restrictive one: "standard" (IETF RateLimit-Policy and RateLimit), "legacy"
	// (X-RateLimit-Limit, -Remaining, -Reset as well), or "none" (hidden from clients; a denial
	// still sends Retry-After). Default: standard.
	Headers string `yaml:"headers"`
}

// RateLimitKey is a rate-limit key: one part ("ip") or a list of parts ([consumer, route]).
type RateLimitKey []string

// UnmarshalYAML implements yaml.NodeUnmarshaler: a scalar is one part, a sequence several.
func (k *RateLimitKey) UnmarshalYAML(n ast.Node) error {
	if s, ok := scalarText(n); ok {
		*k = RateLimitKey{s}
		return nil
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return &nodeError{n.GetToken(), "expected a key such as ip, or a list such as [consumer, route]"}
	}
	out := make(RateLimitKey, 0, len(seq.Values))
	for _, v := range seq.Values {
		s, ok := scalarText(v)
		if !ok {
			return &nodeError{v.GetToken(), "each key part must be a string such as ip or header:X-Tenant"}
		}
		out = append(out, s)
	}
	*k = out
	return nil
}

// ConcurrencyLimit caps the requests in flight on a route at once, per key (like AWS
// maxConcurrentRequests). Counts are kept per gateway instance and survive reloads. A request
// over the cap gets 429 concurrency_limited at once; none are queued.
type ConcurrencyLimit struct {
	// Key is what in-flight requests are counted by, with the same parts as a rate limit's key;
	// "route" caps the route as a whole. Default: route.
	Key RateLimitKey `yaml:"key"`
	// Max is the most requests in flight per key. Required, at least 1.
	Max int `yaml:"max"`
}

// Rate-limit field values.
const (
	StoreMemory       = "memory"
	StoreRedis        = "redis"
	FailOpen          = "fail_open"
	FailClosed        = "fail_closed"
	HeadersStandard   = "standard"
	HeadersLegacy     = "legacy"
	HeadersNone       = "none"
	TierAnonymous     = "anonymous"
	KeyIP             = "ip"
	KeyUser           = "user"
	KeyConsumer       = "consumer"
	KeyRoute          = "route"
	KeyService        = "service"
	KeyHeaderPrefix   = "header:"
	defaultMaxKeys    = 1_000_000
	defaultRedisTO    = 50 * time.Millisecond
	defaultRedisRetry = time.Second
)

func (c *Config) defaultRateLimits() {
	if c.Store.Memory.MaxKeys == 0 {
		c.Store.Memory.MaxKeys = defaultMaxKeys
	}
	if r := c.Store.Redis; r != nil {
		defDur(&r.Timeout, defaultRedisTO)
		defDur(&r.RetryAfterError, defaultRedisRetry)
		if r.KeyPrefix == "" {
			r.KeyPrefix = "gatehouse:"
		}
	}
	store := StoreMemory
	if c.Store.Redis != nil {
		store = StoreRedis
	}
	def := func(ls []RateLimit) {
		for i := range ls {
			l := &ls[i]
			if l.Name == "" {
				l.Name = strings.Join(l.Key, "+")
			}
			if l.Store == "" {
				l.Store = store
			}
			if l.OnError == "" {
				l.OnError = FailOpen
			}
			if l.Headers == "" {
				l.Headers = HeadersStandard
			}
		}
	}
	def(c.RateLimits)
	for i := range c.Services {
		def(c.Services[i].RateLimits)
	}
	for i := range c.Routes {
		def(c.Routes[i].Plugins.RateLimit)
		if cl := c.Routes[i].Plugins.ConcurrencyLimit; cl != nil && len(cl.Key) == 0 {
			cl.Key = RateLimitKey{KeyRoute}
		}
	}
}

func (s *Source) validateRateLimits(add func(path, format string, args ...any)) {
	c := s.Config
	if c.Store.Memory.MaxKeys < 1 {
		add("store.memory.max_keys", "must be at least 1")
	}
	if r := c.Store.Redis; r != nil {
		validateRedis(add, r)
	}
	check := func(p string, ls []RateLimit) {
		names := map[string]int{}
		for i, l := range ls {
			lp := fmt.Sprintf("%s[%d]", p, i)
			validateKey(add, lp+".key", l.Key)
			if !headerSafe(l.Name) {
				add(lp+".name", "%q must be 1-64 printable ASCII characters without quotes or backslashes (it is sent in the RateLimit headers)", l.Name)
			}
			if j, dup := names[l.Name]; dup {
				add(lp+".name", "%q is also the name of %s[%d]; limits in one list need distinct names", l.Name, p, j)
			} else {
				names[l.Name] = i
			}
			if l.Limit < 1 {
				add(lp+".limit", "must be at least 1")
			}
			switch per := l.Per.Duration; {
			case !l.Per.Set():
				add(lp+".per", "is required (e.g. 1s, 1m, 1h)")
			case per < time.Second || per%time.Second != 0:
				add(lp+".per", "%s must be a whole number of seconds (at least 1s)", per)
			case per > 365*24*time.Hour:
				add(lp+".per", "%s is longer than a year", per)
			}
			if l.Burst < 0 {
				add(lp+".burst", "must not be negative")
			}
			if l.Limit > 1e9 || l.Burst > 1e9 {
				add(lp+".limit", "limit and burst must each be at most 1000000000")
			}
			for j, t := range l.Tiers {
				if t == "" {
					add(fmt.Sprintf("%s.tiers[%d]", lp, j), "must not be empty")
				}
			}
			switch l.Store {
			case StoreMemory:
			case StoreRedis:
				if c.Store.Redis == nil {
					add(lp+".store", "is redis but store.redis is not configured")
				}
			default:
				add(lp+".store", "%q must be memory or redis", l.Store)
			}
			if l.OnError != FailOpen && l.OnError != FailClosed {
				add(lp+".on_error", "%q must be fail_open or fail_closed", l.OnError)
			}
			if l.Headers != HeadersStandard && l.Headers != HeadersLegacy && l.Headers != HeadersNone {
				add(lp+".headers", "%q must be standard, legacy or none", l.Headers)
			}
		}
	}
	check("rate_limits", c.RateLimits)
	for i := range c.Services {
		check(fmt.Sprintf("services[%d].rate_limits", i), c.Services[i].RateLimits)
	}
	for i := range c.Routes {
		check(fmt.Sprintf("routes[%d].plugins.rate_limit", i), c.Routes[i].Plugins.RateLimit)
		if cl := c.Routes[i].Plugins.ConcurrencyLimit; cl != nil {
			p := fmt.Sprintf("routes[%d].plugins.concurrency_limit", i)
			validateKey(add, p+".key", cl.Key)
			if cl.Max < 1 {
				add(p+".max", "must be at least 1")
			}
		}
	}
}

func validateKey(add func(path, format string, args ...any), p string, key RateLimitKey) {
	if len(key) == 0 {
		add(p, "is required: ip, user, consumer, header:<Name>, route, service, or a list of them")
		return
	}
	seen := map[string]bool{}
	for j, part := range key {
		pp := p
		if len(key) > 1 {
			pp = fmt.Sprintf("%s[%d]", p, j)
		}
		if seen[strings.ToLower(part)] {
			add(pp, "%q is repeated", part)
		}
		seen[strings.ToLower(part)] = true
		switch part {
		case KeyIP, KeyUser, KeyConsumer, KeyRoute, KeyService:
			continue
		}
		if name, ok := strings.CutPrefix(part, KeyHeaderPrefix); ok {
			if !validToken(name) {
				add(pp, "%q: %q is not a valid header name", part, name)
			}
			continue
		}
		add(pp, "%q must be ip, user, consumer, header:<Name>, route or service", part)
	}
}

func validateRedis(add func(path, format string, args ...any), r *RedisStore) {
	switch {
	case r.URL == "" && len(r.Addrs) == 0:
		add("store.redis", "give url or addrs")
	case r.URL != "" && len(r.Addrs) > 0:
		add("store.redis.url", "give url or addrs, not both")
	case r.URL != "":
		u, err := url.Parse(r.URL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			// The URL may hold a password: never echo it.
			add("store.redis.url", "must be redis://host:port[/db] or rediss://host:port[/db]")
		}
		if r.MasterName != "" || r.Cluster || r.Username != "" || r.Password != "" || r.DB != 0 || r.TLS {
			add("store.redis.url", "master_name, cluster, username, password, db and tls go with addrs; put credentials, db and TLS (rediss://) in the url")
		}
	}
	for i, a := range r.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add(fmt.Sprintf("store.redis.addrs[%d]", i), "%q is not host:port", redactURL(a))
		}
	}
	if r.MasterName != "" && r.Cluster {
		add("store.redis.cluster", "cannot be combined with master_name (Sentinel)")
	}
	if (r.Cluster || len(r.Addrs) > 1 && r.MasterName == "") && r.DB != 0 {
		add("store.redis.db", "Redis Cluster has only database 0")
	}
	if r.DB < 0 {
		add("store.redis.db", "must not be negative")
	}
	if r.Timeout.Duration <= 0 {
		add("store.redis.timeout", "must be positive")
	}
	if r.RetryAfterError.Duration <= 0 {
		add("store.redis.retry_after_error", "must be positive")
	}
	if r.PoolSize < 0 {
		add("store.redis.pool_size", "must not be negative")
	}
}

// headerSafe reports whether s can be sent as a structured-field string in RateLimit headers.
func headerSafe(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
