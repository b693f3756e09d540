package store

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/redis/go-redis/v9"
)

// limitScript applies GCRA to every key (KEYS[i] with ARGV[2i-1] = emission interval in
// microseconds, ARGV[2i] = capacity) and stores the new arrival times only when every limit
// admits the request. Time is Redis's own clock, so replicas with skewed clocks still agree.
// It returns {allowed, then per key: allowed, remaining, reset µs, retry-after µs}.
const limitScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {1}
local tats = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2*i-1])
  local tau = interval * tonumber(ARGV[2*i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now) or now
  if tat < now then tat = now end
  local nxt = tat + interval
  local d = nxt - now
  if d > tau then
    out[1] = 0
    out[#out+1] = 0; out[#out+1] = 0; out[#out+1] = math.ceil(tat - now); out[#out+1] = math.ceil(d - tau)
  else
    out[#out+1] = 1; out[#out+1] = math.floor((tau - d) / interval); out[#out+1] = math.ceil(d); out[#out+1] = 0
    tats[i] = nxt
  end
end
if out[1] == 1 then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], string.format('%.3f', tats[i]), 'PX', math.max(1, math.ceil((tats[i] - now) / 1000)))
  end
end
return out
`

var script = redis.NewScript(limitScript)

// peekScriptSrc reads one counter and the clock of the node that holds it, writing nothing, so
// inspecting a key never consumes from it (and, in a Cluster, uses the same clock as the
// limiter's script on that key). It returns {seconds, microseconds, stored tat or ""}.
const peekScriptSrc = `
local t = redis.call('TIME')
return {t[1], t[2], redis.call('GET', KEYS[1]) or ''}
`

var peekScript = redis.NewScript(peekScriptSrc)

// Redis is a shared connection to the configured Redis (standalone, Sentinel or Cluster) with
// its health state, and the distributed Limiter on top of it. Counters live in Redis only, so
// replicas hold nothing that must agree. After a failed call Redis is bypassed (ErrUnavailable
// at once) for retry_after_error, then tried again: recovery needs no restart.
type Redis struct {
	client  redis.UniversalClient
	cluster bool
	prefix  string
	timeout time.Duration
	outages
	skipped   atomic.Uint64
	fallbacks atomic.Uint64
}

var _ Limiter = (*Redis)(nil)

// RedisStats are a Redis store's counters since it was built.
type RedisStats struct {
	// Failures are calls that failed or timed out.
	Failures uint64
	// Skipped are calls not tried because Redis had just failed.
	Skipped uint64
	// Fallbacks are requests a fail_open limit counted in memory instead.
	Fallbacks uint64
}

// NewRedisClient builds the go-redis client for cfg: one UniversalClient for standalone,
// Sentinel or Cluster, with every timeout set to cfg.Timeout and no retries (a retry would
// only spend the request's time budget; the caller falls back instead).
func NewRedisClient(cfg *config.RedisStore) (redis.UniversalClient, error) {
	to := cfg.Timeout.Duration
	if cfg.URL != "" {
		o, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, errors.New("redis: invalid url") // the URL may hold a password
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = to, to, to, to
		o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries, o.DisableIdentity = true, -1, 1, true
		if cfg.PoolSize > 0 {
			o.PoolSize = cfg.PoolSize
		}
		return redis.NewClient(o), nil
	}
	o := &redis.UniversalOptions{
		Addrs: cfg.Addrs, MasterName: cfg.MasterName, IsClusterMode: cfg.Cluster,
		Username: cfg.Username, Password: cfg.Password, DB: cfg.DB, PoolSize: cfg.PoolSize,
		DialTimeout: to, ReadTimeout: to, WriteTimeout: to, PoolTimeout: to,
		ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1, DisableIdentity: true,
	}
	if cfg.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewUniversalClient(o), nil
}

// RedisKey is the registry key of cfg's connection: equal configs share one client. It is a
// digest, so no password ends up in a key.
func RedisKey(cfg *config.RedisStore) string {
	b, _ := json.Marshal(struct {
		*config.RedisStore
		T, R time.Duration
	}{cfg, cfg.Timeout.Duration, cfg.RetryAfterError.Duration})
	sum := sha256.Sum256(b)
	return "store/redis|" + hex.EncodeToString(sum[:16])
}

// NewRedis builds a Redis store for cfg (defaults applied). Prefer AcquireRedis, which shares
// it across reloads.
func NewRedis(cfg *config.RedisStore, logger *slog.Logger) (*Redis, error) {
	c, err := NewRedisClient(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	_, cluster := c.(*redis.ClusterClient)
	return &Redis{client: c, cluster: cluster, prefix: cfg.KeyPrefix, timeout: cfg.Timeout.Duration,
		outages: outages{backoff: cfg.RetryAfterError.Duration, logger: logger}}, nil
}

// AcquireRedis returns the Redis store shared by every Runtime with an equal cfg; the last one
// to be retired closes its connections.
func AcquireRedis(acquire AcquireFunc, cfg *config.RedisStore, logger *slog.Logger) (*Redis, error) {
	c, err := acquire(RedisKey(cfg), func() (io.Closer, error) { return NewRedis(cfg, logger) })
	if err != nil {
		return nil, err
	}
	return c.(*Redis), nil
}

// Client returns the underlying client, for other features that keep state in the same Redis
// (use a key prefix of your own).
func (r *Redis) Client() redis.UniversalClient { return r.client }

// Close closes the client's connections.
func (r *Redis) Close() error { return r.client.Close() }

// Stats returns the store's counters.
func (r *Redis) Stats() RedisStats {
	return RedisStats{Failures: r.failures.Load(), Skipped: r.skipped.Load(), Fallbacks: r.fallbacks.Load()}
}

// NoteFallback counts a request that a fail_open limit decided in memory because Redis failed.
func (r *Redis) NoteFallback() { r.fallbacks.Add(1) }

// Available reports whether Redis is being tried (false during the pause after a failure).
func (r *Redis) Available() bool { return time.Now().UnixNano() >= r.downUntil.Load() }

// Allow implements Limiter with one round trip: a single EVALSHA over every key (Cluster: one
// per key, pipelined, since keys of one request may live on different nodes; there a request
// denied by one limit may still be counted by the others). It returns an error wrapping
// ErrUnavailable when Redis fails, times out, or failed less than retry_after_error ago.
func (r *Redis) Allow(ctx context.Context, reqs []Request, res []Result) (bool, error) {
	if len(reqs) == 0 {
		return true, nil
	}
	if !r.Available() {
		r.skipped.Add(1)
		return false, fmt.Errorf("redis limiter: %w (recent failure)", ErrUnavailable)
	}
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	keys := make([]string, len(reqs))
	args := make([]any, 0, 2*len(reqs))
	for i, q := range reqs {
		keys[i] = r.prefix + string(q.Key)
		args = append(args, strconv.FormatFloat(float64(q.Interval)/1e3, 'f', -1, 64), q.Capacity)
	}
	var allowed bool
	var err error
	if r.cluster && len(reqs) > 1 {
		allowed, err = r.allowEach(ctx, keys, args, res)
	} else {
		var v any
		v, err = script.Run(ctx, r.client, keys, args...).Result()
		if err == nil {
			allowed, err = parseReply(v, res)
		}
	}
	if err != nil {
		return false, r.fail(caller, err)
	}
	return allowed, nil
}

// allowEach runs the script once per key, pipelined. A node that does not have the script
// cached answers NOSCRIPT; only those calls are sent again with the script's source, since the
// others have already counted the request (running them twice would count it twice).
func (r *Redis) allowEach(ctx context.Context, keys []string, args []any, res []Result) (bool, error) {
	cmds := make([]*redis.Cmd, len(keys))
	pipe := r.client.Pipeline()
	for i := range keys {
		cmds[i] = script.EvalSha(ctx, pipe, keys[i:i+1], args[2*i:2*i+2]...)
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		var again []int
		for i, c := range cmds {
			if c.Err() != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				again = append(again, i)
			}
		}
		if len(again) > 0 {
			pipe = r.client.Pipeline()
			for _, i := range again {
				cmds[i] = script.Eval(ctx, pipe, keys[i:i+1], args[2*i:2*i+2]...)
			}
			_, _ = pipe.Exec(ctx)
			err = nil
			for _, c := range cmds {
				if c.Err() != nil {
					err = c.Err()
					break
				}
			}
		}
	}
	if err != nil {
		return false, err
	}
	allowed := true
	for i, c := range cmds {
		ok, perr := parseReply(c.Val(), res[i:i+1])
		if perr != nil {
			return false, perr
		}
		allowed = allowed && ok
	}
	return allowed, nil
}

// Peek fills res with the state of each counter in reqs without counting anything, in one
// pipelined round trip (one read-only script per key, so it also works across Cluster nodes).
// It returns one error per request (nil when that counter was read); a failure here does not
// pause the limiter the way a failed Allow does. res must have len(reqs) entries.
func (r *Redis) Peek(ctx context.Context, reqs []Request, res []Result) []error {
	errs := make([]error, len(reqs))
	if len(reqs) == 0 {
		return errs
	}
	ctx, cancel := context.WithTimeout(ctx, max(r.timeout, time.Second))
	defer cancel()
	run := func(eval bool) []*redis.Cmd {
		pipe := r.client.Pipeline()
		cmds := make([]*redis.Cmd, len(reqs))
		for i, q := range reqs {
			keys := []string{r.prefix + string(q.Key)}
			if eval {
				cmds[i] = peekScript.Eval(ctx, pipe, keys)
			} else {
				cmds[i] = peekScript.EvalSha(ctx, pipe, keys)
			}
		}
		_, _ = pipe.Exec(ctx) // errors are read per command
		return cmds
	}
	cmds := run(false)
	for _, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			cmds = run(true)
			break
		}
	}
	for i, c := range cmds {
		now, tat, err := parsePeek(c)
		if err != nil {
			errs[i] = fmt.Errorf("redis peek: %w: %w", ErrUnavailable, err)
			continue
		}
		res[i] = peek(now, tat, int64(reqs[i].Interval), reqs[i].Capacity)
	}
	return errs
}

// parsePeek decodes peekScript's reply into nanoseconds (tat 0: no counter).
func parsePeek(c *redis.Cmd) (now, tat int64, err error) {
	v, err := c.Result()
	if err != nil {
		return 0, 0, err
	}
	a, ok := v.([]any)
	if !ok || len(a) != 3 {
		return 0, 0, errors.New("unexpected peek reply")
	}
	str := make([]string, 3)
	for i, x := range a {
		if str[i], ok = x.(string); !ok {
			return 0, 0, errors.New("unexpected peek reply")
		}
	}
	sec, err1 := strconv.ParseInt(str[0], 10, 64)
	usec, err2 := strconv.ParseInt(str[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("unexpected peek reply")
	}
	now = sec*int64(time.Second) + usec*int64(time.Microsecond)
	if str[2] != "" {
		f, perr := strconv.ParseFloat(str[2], 64)
		if perr != nil {
			return 0, 0, errors.New("unexpected counter value")
		}
		tat = int64(f * float64(time.Microsecond))
	}
	return now, tat, nil
}

func parseReply(v any, res []Result) (bool, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 1+4*len(res) {
		return false, errors.New("unexpected script reply")
	}
	n := make([]int64, len(a))
	for i, x := range a {
		if n[i], ok = x.(int64); !ok {
			return false, errors.New("unexpected script reply")
		}
	}
	for i := range res {
		f := n[1+4*i:]
		res[i] = Result{Allowed: f[0] == 1, Remaining: f[1], Reset: time.Duration(f[2]) * time.Microsecond,
			RetryAfter: time.Duration(f[3]) * time.Microsecond}
	}
	return n[0] == 1, nil
}

// fail notes a failed call made for parent (see outages.fail).
func (r *Redis) fail(parent context.Context, err error) error {
	return r.outages.fail(parent, err, "redis limiter",
		"redis store unavailable; limits follow their on_error policy",
		"redis refused a limiter key; that request follows its limits' on_error policy",
		"fallbacks", r.fallbacks.Load())
}

// outages is a Redis store's failure bookkeeping: when it is set aside until, its failure
// count, and its rate-limited log.
type outages struct {
	backoff   time.Duration
	logger    *slog.Logger
	downUntil atomic.Int64
	lastLog   atomic.Int64
	failures  atomic.Uint64
}

// fail notes a failed call made for parent and returns err wrapped in ErrUnavailable, with
// what naming the store. Unless parent itself ended (the client went away or its deadline
// passed, which says nothing about Redis), the failure is counted, and unless Redis only refused
// this call's key (keyError), the store is set aside for the back-off. The failure is logged at
// most every 10 seconds, with down or refused as the message and extra attributes.
func (o *outages) fail(parent context.Context, err error, what, down, refused string, extra ...any) error {
	if parent.Err() != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	o.failures.Add(1)
	now := time.Now().UnixNano()
	keyed := keyError(err)
	if !keyed {
		o.downUntil.Store(now + int64(o.backoff))
	}
	last := o.lastLog.Load()
	if now-last >= int64(10*time.Second) && o.lastLog.CompareAndSwap(last, now) {
		attrs := []any{"error", logSafe(err)}
		msg := refused
		if !keyed {
			msg = down
			attrs = append(attrs, "retry_in", o.backoff.String())
		}
		o.logger.Warn(msg, append(append(attrs, "failures", o.failures.Load()), extra...)...)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}

// keyError reports whether err is Redis refusing one key or one script run (a key holding
// another type, written under the same prefix by something else) rather than failing as a
// store: that says nothing about the other keys, so Redis is not set aside for everyone.
// Network errors, timeouts and the server's own states (OOM, LOADING, NOAUTH, READONLY,
// MASTERDOWN, ...) are not.
func keyError(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	return redis.HasErrorPrefix(err, "WRONGTYPE") ||
		redis.HasErrorPrefix(err, "ERR") && strings.Contains(err.Error(), "user_script")
}

// credentialInURL is the userinfo of a URL in an error message ("redis://user:pass@host").
var credentialInURL = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@`)

// logSafe is err's message with any credential of a URL in it replaced: a failure is logged
// with its cause (a Lua error names "@user_script"), never with a password.
func logSafe(err error) string {
	return credentialInURL.ReplaceAllString(err.Error(), "${1}xxxxx@")
}
