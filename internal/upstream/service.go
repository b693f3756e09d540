package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
	"github.com/gatehouse/gatehouse/internal/wire"
)

// ErrNoHealthyTarget is returned when every Target of a Service is unhealthy (and the Service
// does not try anyway). The request was not sent.
var ErrNoHealthyTarget = errors.New("no healthy upstream target")

// RetryConfig configures retries; see config.Retries for the user-facing meaning of each field.
type RetryConfig struct {
	// Attempts is the most attempts per request, the first included.
	Attempts int
	// Methods that may be retried (upper case).
	Methods []string
	// RetryOn says which attempt outcomes are retried.
	RetryOn       Conditions
	PerTryTimeout time.Duration
	Backoff       time.Duration
	MaxBackoff    time.Duration
	// BudgetPercent, BudgetMinRetries and BudgetWindow shape the RetryBudget.
	BudgetPercent    int
	BudgetMinRetries int
	BudgetWindow     time.Duration
	// MaxBodyBytes is the largest request body buffered for replay; larger bodies are not retried.
	MaxBodyBytes int64
}

// Fallback answers a request while the Service's circuit breaker is open: a static response, or
// the answer of another Service (which gets no fallback of its own).
type Fallback struct {
	Status      int
	Body        string
	ContentType string
	// Service, when set, serves the request instead of the static response.
	Service *Service
}

// ServiceConfig describes a Service. Targets are built by the caller (and usually shared through
// Registry.Targets); everything else is plain settings.
type ServiceConfig struct {
	Name    string
	Targets []*Target
	// Balancer is the balancer kind (see NewBalancer).
	Balancer string
	// Breaker, Active, Passive and Retry are nil when not configured.
	Breaker *BreakerConfig
	Active  *ActiveHealth
	Passive *PassiveHealth
	Retry   *RetryConfig
	// TryAnyway sends a request to some Target when none is healthy, instead of failing it.
	TryAnyway bool
	Fallback  *Fallback
	// Transport and RequestTimeout serve Do, and the calls of services that fall back to this
	// one while their breaker is open; the proxy passes its own per-route transport otherwise.
	Transport      http.RoundTripper
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// serviceState is a Service's long-lived state: breakers, the active health checker and the
// retry budget. Registry shares it across reloads, keyed by the normalized ServiceConfig.
type serviceState struct {
	name           string
	targets        []*Target
	breaker        *Breaker   // service-wide; nil unless configured and not per target
	targetBreakers []*Breaker // per target, same order as targets; nil unless per target
	checker        *HealthChecker
	budget         *RetryBudget
}

func newServiceState(cfg *ServiceConfig) (*serviceState, error) {
	st := &serviceState{name: cfg.Name, targets: cfg.Targets}
	if b := cfg.Breaker; b != nil {
		if b.PerTarget {
			st.targetBreakers = make([]*Breaker, len(cfg.Targets))
			for i, t := range cfg.Targets {
				st.targetBreakers[i] = NewBreaker(cfg.Name+" "+t.String(), *b)
			}
		} else {
			st.breaker = NewBreaker(cfg.Name, *b)
		}
	}
	if r := cfg.Retry; r != nil && r.Attempts > 1 {
		st.budget = NewRetryBudget(r.BudgetPercent, r.BudgetMinRetries, r.BudgetWindow)
	}
	if a := cfg.Active; a != nil {
		var err error
		if st.checker, err = StartHealthChecker(cfg.Name, cfg.Targets, *a, cfg.Logger); err != nil {
			return nil, fmt.Errorf("health_check.active: %w", err)
		}
	}
	return st, nil
}

// Close stops the health checker.
func (st *serviceState) Close() {
	if st.checker != nil {
		_ = st.checker.Close()
	}
}

// stateKey normalizes what shapes a serviceState: the same key means the same state may be kept.
func stateKey(cfg *ServiceConfig) string {
	var b strings.Builder
	b.WriteString(cfg.Name)
	for _, t := range cfg.Targets {
		fmt.Fprintf(&b, "|%s#%d", t, t.Weight)
	}
	if cfg.Breaker != nil {
		fmt.Fprintf(&b, "|breaker%+v", *cfg.Breaker)
	}
	if cfg.Active != nil {
		// With the probes' TLS and protocol: a reload that changes them needs a new checker.
		fmt.Fprintf(&b, "|active%+v", *cfg.Active)
	}
	if cfg.Retry != nil && cfg.Retry.Attempts > 1 { // as newServiceState: a budget exists only then
		fmt.Fprintf(&b, "|budget%d/%d/%v", cfg.Retry.BudgetPercent, cfg.Retry.BudgetMinRetries, cfg.Retry.BudgetWindow)
	}
	return b.String()
}

// Service sends requests to one service's Targets with its resilience policy: per attempt it
// asks the circuit breaker, picks a healthy Target (another one on each retry when there is one),
// bounds the wait for the response head by the per-try timeout (the body only by the caller's
// deadline), feeds the outcome to the breaker and to passive health checking, and retries
// within the budget with backoff. While the breaker is open, a fallback service is called
// through its own transport.
//
// A Service is built per Runtime and is immutable; its state (breakers, health, budget) is
// shared across reloads through the Registry. It is safe for concurrent use.
type Service struct {
	name      string
	targets   []*Target
	bal       Balancer
	st        *serviceState
	passive   *PassiveHealth
	retry     *RetryConfig
	tryAnyway bool
	fallback  *Fallback
	transport http.RoundTripper
	timeout   time.Duration
	logger    *slog.Logger
	rotation  atomic.Uint64 // spreads try_anyway picks
	close     func()
}

// NewService builds a Service with state of its own (not shared through a Registry); Close
// releases it. Runtimes use Registry.AcquireService instead.
func NewService(cfg ServiceConfig) (*Service, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("service: no targets")
	}
	st, err := newServiceState(&cfg)
	if err != nil {
		return nil, err
	}
	s, err := buildService(&cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	s.close = st.Close
	return s, nil
}

// Close releases the state of a Service built by NewService; it does nothing for one acquired
// from a Registry (call the release function instead).
func (s *Service) Close() {
	if s.close != nil {
		s.close()
	}
}

func buildService(cfg *ServiceConfig, st *serviceState) (*Service, error) {
	bal, err := NewBalancer(cfg.Balancer, cfg.Targets)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Service{
		name: cfg.Name, targets: cfg.Targets, bal: bal, st: st, passive: cfg.Passive, retry: cfg.Retry,
		tryAnyway: cfg.TryAnyway, fallback: cfg.Fallback, transport: cfg.Transport,
		timeout: cfg.RequestTimeout, logger: logger,
	}
	if s.retry != nil && s.retry.Attempts <= 1 {
		s.retry = nil
	}
	return s, nil
}

// Name returns the service name.
func (s *Service) Name() string { return s.name }

// Targets returns the service's Targets; they must not be modified.
func (s *Service) Targets() []*Target { return s.targets }

// SendFunc performs one attempt: req is the outgoing request already pointed at t (scheme, host
// and t's base path), carrying the attempt's context and a fresh body. It usually ends in
// http.RoundTripper.RoundTrip, plus whatever per-attempt bookkeeping the caller does.
//
// tr is nil when t is a Target of the Service the caller ran, and the caller sends with its own
// transport. It is set when t belongs to the circuit breaker's fallback service: the attempt
// must then go through tr, that service's own pool, with its TLS, protocol and timeouts (the
// caller's transport was built for the other service).
type SendFunc func(req *http.Request, t *Target, tr http.RoundTripper) (*http.Response, error)

// Do sends req to the service with its whole resilience policy, for callers outside the proxy
// (the aggregation engine). req.URL holds the path and query to request (scheme and host come
// from the chosen Target); req's headers go as they are. ctx bounds every attempt; without a
// deadline the service's request timeout applies. The response body must be closed.
// Errors: *OpenError (breaker open), ErrNoHealthyTarget, or the last attempt's transport error.
func (s *Service) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	return s.DoObserved(ctx, req, nil)
}

// Observer is told of each attempt DoObserved makes, as it starts: the attempt's request (whose
// headers it may add to, a trace context say) and target ("host:port"). It returns the function
// called with the attempt's outcome: its response status, or err when none came back.
type Observer func(req *http.Request, target string) (end func(status int, err error))

// DoObserved is Do with each attempt reported to observe (nil: none), for the metrics and
// client spans of calls made outside the proxy.
func (s *Service) DoObserved(ctx context.Context, req *http.Request, observe Observer) (*http.Response, error) {
	if s.transport == nil {
		return nil, errors.New("service: no transport")
	}
	var sc *reqctx.Scope
	if _, ok := ctx.Deadline(); !ok && s.timeout > 0 {
		sc = reqctx.WithTimeout(ctx, s.timeout)
		ctx = sc
	}
	resp, err := s.Run(req.WithContext(ctx), "", func(r *http.Request, t *Target, tr http.RoundTripper) (*http.Response, error) {
		if tr == nil {
			tr = s.transport
		}
		if observe == nil {
			return tr.RoundTrip(r)
		}
		end := observe(r, t.URL.Host)
		resp, err := tr.RoundTrip(r)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		end(status, err)
		return resp, err
	})
	return endWithBody(resp, err, sc)
}

// endWithBody ties sc, a Scope made for one call (nil: none), to the call's outcome: it is
// canceled at once when the call failed, else when the response body is closed.
func endWithBody(resp *http.Response, err error, sc *reqctx.Scope) (*http.Response, error) {
	if sc != nil {
		if err != nil {
			sc.Cancel()
		} else {
			resp.Body = wrapBody(resp.Body, nil, sc, nil)
		}
	}
	return resp, err
}

// Run sends req (an outgoing request whose URL holds at least the path and query) with the
// resilience policy, calling send once per attempt. hashKey feeds consistent hashing. The
// returned response's body must be closed; closing it ends the attempt (its in-flight count and
// per-try context). On error no response is returned.
//
// req's body is read by the attempts; when retries apply and it fits the replay limit it is
// buffered first so every attempt can send it.
func (s *Service) Run(req *http.Request, hashKey string, send SendFunc) (*http.Response, error) {
	return s.run(req, hashKey, send, nil, true)
}

// run is Run; tr is passed on to send (nil, or the transport of a fallback service).
func (s *Service) run(req *http.Request, hashKey string, send SendFunc, tr http.RoundTripper, allowFallback bool) (*http.Response, error) {
	ctx := req.Context()
	maxAttempts := 1
	if s.retry != nil && slices.Contains(s.retry.Methods, req.Method) && !wire.IsUpgrade(req.Header) {
		s.st.budget.Request()
		if replayable(req, s.retry.MaxBodyBytes) {
			maxAttempts = s.retry.Attempts
		}
	}
	t, done, err := s.pick(hashKey, nil)
	if err != nil {
		var oe *OpenError
		if allowFallback && s.fallback != nil && errors.As(err, &oe) {
			return s.serveFallback(req, hashKey, send)
		}
		return nil, err
	}
	resp, o, err := s.attempt(req, t, done, send, tr, maxAttempts > 1)
	var tried []*Target
	for n := 1; n < maxAttempts; n++ {
		if o.failure == Canceled || !s.retry.RetryOn.Match(o.failure, o.status) || ctx.Err() != nil {
			break
		}
		wait := s.backoff(n)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			break // no time left for another attempt
		}
		if !s.st.budget.TryRetry() {
			s.logger.Debug("retry budget exhausted", "service", s.name)
			break
		}
		if !sleepCtx(ctx, wait) {
			break
		}
		tried = append(tried, t)
		next, nextDone, perr := s.pick(hashKey, tried)
		if perr != nil {
			break // the breaker opened meanwhile or nothing is left: answer with what we have
		}
		if resp != nil {
			discard(resp)
		}
		s.logger.Debug("retrying", "service", s.name, "attempt", n+1, "after", o.failure.String(), "status", o.status)
		t = next
		resp, o, err = s.attempt(req, t, nextDone, send, tr, true)
	}
	return resp, err
}

// attempt sends one attempt to t (through send, passing tr on) and records its outcome.
func (s *Service) attempt(req *http.Request, t *Target, done func(Failure, int), send SendFunc, tr http.RoundTripper, replay bool) (*http.Response, outcome, error) {
	parent := req.Context()
	var (
		a  *attemptRequest
		pt *perTry
	)
	out := req
	if s.retry != nil && s.retry.PerTryTimeout > 0 && !wire.IsUpgrade(req.Header) {
		// The per-try timeout bounds the attempt until its response head arrives, and no
		// further: a healthy response that streams for longer is the route timeout's to cut
		// (as Envoy does). So it is not a deadline of the attempt's context, which would bound
		// the body too, but a timer that cancels the context unless the head came first.
		pt = new(perTry)
		pt.sc.Init(parent) // a Scope: the upstream client registers with it without allocating
		a = &pt.attemptRequest
		a.req = *req.WithContext(&pt.sc) // inlined: WithContext's copy stays on the stack
		out = &a.req
		pt.timer = time.AfterFunc(s.retry.PerTryTimeout, pt.expire)
	} else {
		// The request, its URL, the request and response bodies' wrappers in one allocation
		// (WithContext would copy the request alone).
		a = &attemptRequest{req: *req}
		out = &a.req
	}
	a.url = *req.URL
	u, b, cb := &a.url, &a.body, &a.reqBody
	u.Scheme, u.Host = t.URL.Scheme, t.URL.Host
	if base := t.URL.EscapedPath(); base != "" && base != "/" {
		SetEscapedPath(u, strings.TrimSuffix(base, "/")+u.EscapedPath())
	}
	out.URL = u
	if replay && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			body = http.NoBody
		}
		out.Body = body
	}
	if out.Body != nil && out.Body != http.NoBody && !wire.IsUpgrade(req.Header) {
		// A failure to read the client's body must not count against the target.
		cb.rc = out.Body
		out.Body = cb
	} else {
		cb = nil
	}

	t.Acquire()
	resp, err := send(out, t, tr)
	if pt != nil && !pt.answered() {
		// The timer canceled the attempt first (its body, if the head arrived just then, is
		// cut with it): a timeout, whatever the transport made of the cancellation.
		if resp != nil {
			_ = resp.Body.Close()
		}
		resp, err = nil, errPerTryTimeout
	}
	err = cb.blame(err)
	o := newOutcome(parent, resp, err)
	if done != nil {
		done(o.failure, o.status)
	}
	if s.passive != nil {
		// A service that tries anyway sends to ejected Targets when no other is left, so
		// ejecting its last one stops no traffic; any other keeps its last one (see Record).
		peers := s.targets
		if s.tryAnyway {
			peers = nil
		}
		if s.passive.Record(t, peers, o.failure, o.status) {
			s.logger.Warn("target ejected", "service", s.name, "target", t.String(), "until", t.EjectedUntil())
		}
	}
	var sc *reqctx.Scope
	if pt != nil {
		sc = &pt.sc
	}
	if err != nil {
		t.Release()
		if sc != nil {
			sc.Cancel()
		}
		return nil, o, err
	}
	resp.Body = wrapBody(resp.Body, t, sc, b)
	return resp, o, nil
}

// errPerTryTimeout is the error of an attempt cut by the per-try timeout. It wraps
// context.DeadlineExceeded: the attempt is a Timeout, and the client gets a 504.
var errPerTryTimeout = fmt.Errorf("per-try timeout: %w", context.DeadlineExceeded)

// attemptRequest is an attempt's copy of the request, pointed at its Target, and the wrappers
// of its request's and its response's bodies.
type attemptRequest struct {
	req     http.Request
	url     url.URL
	body    body
	reqBody clientBody
}

// perTry is an attempt bounded by the per-try timeout, in one allocation with its wrappers and
// its request (whose context is sc).
type perTry struct {
	attemptRequest
	sc    reqctx.Scope
	timer *time.Timer
	state atomic.Uint32 // perTryWaiting, then perTryAnswered or perTryExpired
}

// The states of a perTry: the attempt waits for its response head until either the head comes
// (answered) or the timer fires (expired), whichever is first.
const (
	perTryWaiting uint32 = iota
	perTryAnswered
	perTryExpired
)

// expire runs when the per-try timeout passes: it cancels the attempt unless its response head
// has come.
func (p *perTry) expire() {
	if p.state.CompareAndSwap(perTryWaiting, perTryExpired) {
		p.sc.Cancel()
	}
}

// answered records that the transport returned (a response head or an error) and stops the
// timer; it reports false when the timer had already fired and canceled the attempt.
func (p *perTry) answered() bool {
	p.timer.Stop()
	return p.state.CompareAndSwap(perTryWaiting, perTryAnswered)
}

// pick asks the breakers and the balancer for the next attempt's Target, avoiding tried.
func (s *Service) pick(hashKey string, tried []*Target) (*Target, func(Failure, int), error) {
	var done func(Failure, int)
	if b := s.st.breaker; b != nil {
		d, err := b.Allow(s.name)
		if err != nil {
			return nil, nil, err
		}
		done = d
	}
	skip := tried
	var open []*Target
	for {
		t := s.bal.Pick(hashKey, skip)
		if t == nil && s.tryAnyway {
			t = s.anyTarget(skip)
		}
		if t == nil {
			if done != nil {
				done(Canceled, 0)
			}
			return nil, nil, ErrNoHealthyTarget
		}
		if s.st.targetBreakers == nil {
			return t, done, nil
		}
		i := slices.Index(s.targets, t)
		if slices.Contains(open, t) || i < 0 {
			// Every Target left has an open breaker.
			oe := &OpenError{Service: s.name, RetryAfter: time.Second}
			return nil, nil, oe
		}
		d, err := s.st.targetBreakers[i].Allow(s.name)
		if err != nil {
			open = append(open, t)
			skip = append(slices.Clip(skip), t)
			continue
		}
		return t, d, nil
	}
}

// anyTarget picks a Target regardless of health, preferring ones not in skip.
func (s *Service) anyTarget(skip []*Target) *Target {
	n := uint64(len(s.targets))
	start := s.rotation.Add(1) - 1
	for k := uint64(0); k < n; k++ {
		if t := s.targets[(start+k)%n]; !excluded(skip, t) {
			return t
		}
	}
	return s.targets[start%n]
}

// backoff returns the wait before retry n (n >= 1): Backoff doubled per retry, capped at
// MaxBackoff, minus a random jitter of up to half of it.
func (s *Service) backoff(n int) time.Duration {
	d := s.retry.Backoff
	for i := 1; i < n && d < s.retry.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.retry.MaxBackoff)
	if d <= 0 {
		return 0
	}
	return d - rand.N(d/2+1)
}

func (s *Service) serveFallback(req *http.Request, hashKey string, send SendFunc) (*http.Response, error) {
	fb := s.fallback
	if fs := fb.Service; fs != nil {
		// The fallback service is called as itself: through its own pool (TLS, protocol,
		// connect and header timeouts; the caller's transport is the primary's) and within its
		// own request timeout too, when that ends first.
		var sc *reqctx.Scope
		if fs.timeout > 0 && !wire.IsUpgrade(req.Header) {
			if dl, ok := req.Context().Deadline(); !ok || time.Until(dl) > fs.timeout {
				sc = reqctx.WithTimeout(req.Context(), fs.timeout)
				req = req.WithContext(sc)
			}
		}
		resp, err := fs.run(req, hashKey, send, fs.transport, false)
		return endWithBody(resp, err, sc)
	}
	h := http.Header{}
	if fb.ContentType != "" {
		h.Set("Content-Type", fb.ContentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(fb.Body)))
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", fb.Status, http.StatusText(fb.Status)),
		StatusCode:    fb.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(fb.Body)),
		ContentLength: int64(len(fb.Body)),
		Request:       req,
	}, nil
}

// replayable makes req's body readable once per attempt (req.GetBody) when it is empty or fits
// limit bytes, and reports whether it did. A larger body is left streaming, unread bytes
// included, and the request gets a single attempt.
func replayable(req *http.Request, limit int64) bool {
	if req.Body == nil || req.Body == http.NoBody {
		req.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return true
	}
	if req.ContentLength > limit {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil || int64(len(buf)) > limit {
		// Keep what was read in front of the rest; the single attempt sends it all (or fails
		// the same way the read did).
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), errReader{err}, req.Body), req.Body}
		return false
	}
	_ = req.Body.Close()
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	req.Body, _ = req.GetBody()
	return true
}

// errReader returns err, or EOF when err is nil.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	return 0, io.EOF
}

// discard drains a little of a response that will not be used, so its connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// SetEscapedPath sets u's path from an already-escaped path, keeping the exact spelling.
func SetEscapedPath(u *url.URL, escaped string) {
	if !strings.ContainsRune(escaped, '%') {
		u.Path, u.RawPath = escaped, ""
		return
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		u.Path, u.RawPath = escaped, ""
		return
	}
	u.Path, u.RawPath = p, escaped
}

// body ends an attempt when the response body is closed: the Target's in-flight count drops and
// the attempt's own Scope (per-try or call timeout), if any, is released.
type body struct {
	io.ReadCloser
	t      *Target
	sc     *reqctx.Scope // a pointer rather than sc.Cancel, whose method value would allocate
	closed atomic.Bool
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	if b.closed.CompareAndSwap(false, true) {
		if b.t != nil {
			b.t.Release()
		}
		if b.sc != nil {
			b.sc.Cancel()
		}
	}
	return err
}

// rwBody is body for a switched-protocols (101) response, whose body is the connection.
type rwBody struct{ *body }

func (b rwBody) Write(p []byte) (int, error) { return b.ReadCloser.(io.Writer).Write(p) }

// wrapBody wraps rc so that closing it releases t and cancels sc (either may be nil), in b when
// b is not nil (a zero body allocated with something else), else in a new body.
func wrapBody(rc io.ReadCloser, t *Target, sc *reqctx.Scope, b *body) io.ReadCloser {
	if rc == nil {
		rc = http.NoBody
	}
	if b == nil {
		b = new(body)
	}
	b.ReadCloser, b.t, b.sc = rc, t, sc
	if _, ok := rc.(io.Writer); ok {
		return rwBody{b}
	}
	return b
}

// State returns the service's breaker and target state.
func (s *Service) State() ServiceState { return s.st.snapshot() }

// ServiceState is a service's resilience state, for the admin API and metrics.
type ServiceState struct {
	Name string `json:"name"`
	// Breaker is the service-wide breaker's state; "" when the service has none (or has one per
	// target).
	Breaker BreakerState  `json:"breaker,omitempty"`
	Targets []TargetState `json:"targets"`
	// RetryRequests and Retries are the retry budget's counts over its window.
	RetryRequests int64 `json:"retry_requests,omitempty"`
	Retries       int64 `json:"retries,omitempty"`
}

// TargetState is one Target's state.
type TargetState struct {
	URL string `json:"url"`
	// Healthy: the Target gets traffic (active check passing and not ejected).
	Healthy bool `json:"healthy"`
	// ActiveHealthy is the active health check's verdict alone.
	ActiveHealthy bool  `json:"active_healthy"`
	InFlight      int64 `json:"in_flight"`
	// EjectedUntil is when passive health checking lets the Target back in (zero: not ejected).
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// Breaker is the Target's own breaker state with per-target breakers, else "".
	Breaker BreakerState `json:"breaker,omitempty"`
}

func (st *serviceState) snapshot() ServiceState {
	out := ServiceState{Name: st.name, Targets: make([]TargetState, len(st.targets))}
	if st.breaker != nil {
		out.Breaker = st.breaker.State()
	}
	if st.budget != nil {
		out.RetryRequests, out.Retries = st.budget.Counts()
	}
	for i, t := range st.targets {
		ts := TargetState{URL: t.String(), Healthy: t.Healthy(), ActiveHealthy: t.ActiveHealthy(),
			InFlight: t.InFlight(), EjectedUntil: t.EjectedUntil()}
		if st.targetBreakers != nil {
			ts.Breaker = st.targetBreakers[i].State()
		}
		out.Targets[i] = ts
	}
	return out
}
