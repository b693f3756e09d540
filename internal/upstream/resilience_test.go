package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	b := NewRetryBudget(20, 2, time.Second)
	b.now = func() time.Time { return now }
	// With no requests, only the minimum is allowed.
	if !b.TryRetry() || !b.TryRetry() || b.TryRetry() {
		t.Fatal("min_retries not honoured")
	}
	for range 10 {
		b.Request()
	}
	// 2 + 20% of 10 = 4 retries in all.
	if !b.TryRetry() || !b.TryRetry() || b.TryRetry() {
		t.Fatal("percentage not honoured")
	}
	if req, ret := b.Counts(); req != 10 || ret != 4 {
		t.Fatalf("counts %d/%d", req, ret)
	}
	// The window rolls: after it passes, the old counts are gone.
	now = now.Add(1100 * time.Millisecond)
	if req, ret := b.Counts(); req != 0 || ret != 0 {
		t.Fatalf("counts after the window %d/%d", req, ret)
	}
	if !b.TryRetry() {
		t.Fatal("no retry allowed in a fresh window")
	}
}

func TestBreakerThresholdAndPercent(t *testing.T) {
	t.Parallel()
	on, _ := ParseConditions([]string{"5xx", "connect_error"}, []int{429})
	tests := []struct {
		name     string
		cfg      BreakerConfig
		outcomes []outcome
		want     BreakerState
	}{
		{"consecutive reached", BreakerConfig{FailureThreshold: 3}, []outcome{{status: 500}, {failure: ConnectError}, {status: 429}}, BreakerOpen},
		{"consecutive broken by a success", BreakerConfig{FailureThreshold: 3}, []outcome{{status: 500}, {status: 500}, {status: 200}, {status: 500}}, BreakerClosed},
		{"not a listed failure", BreakerConfig{FailureThreshold: 1}, []outcome{{status: 404}, {failure: Timeout}}, BreakerClosed},
		{"cancellations do not count", BreakerConfig{FailureThreshold: 2}, []outcome{{status: 500}, {failure: Canceled}, {status: 200}}, BreakerClosed},
		{"percent below min requests", BreakerConfig{FailurePercent: 50, MinRequests: 4, Window: time.Minute}, []outcome{{status: 500}, {status: 500}, {status: 500}}, BreakerClosed},
		{"percent reached", BreakerConfig{FailurePercent: 50, MinRequests: 4, Window: time.Minute}, []outcome{{status: 500}, {status: 200}, {status: 200}, {status: 500}}, BreakerOpen},
		{"percent not reached", BreakerConfig{FailurePercent: 50, MinRequests: 4, Window: time.Minute}, []outcome{{status: 500}, {status: 200}, {status: 200}, {status: 200}, {status: 500}}, BreakerClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.FailureOn, tc.cfg.RecoveryTimeout = on, time.Minute
			b := NewBreaker("s", tc.cfg)
			for _, o := range tc.outcomes {
				done, err := b.Allow("s")
				if err != nil {
					t.Fatalf("refused before the end: %v", err)
				}
				done(o.failure, o.status)
			}
			if got := b.State(); got != tc.want {
				t.Fatalf("state %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBreakerOpenErrorAndHalfOpen(t *testing.T) {
	t.Parallel()
	on, _ := ParseConditions([]string{"5xx"}, nil)
	b := NewBreaker("s", BreakerConfig{FailureThreshold: 1, RecoveryTimeout: 50 * time.Millisecond, HalfOpenRequests: 2, FailureOn: on})
	done, _ := b.Allow("s")
	done(NoFailure, 503)
	_, err := b.Allow("s")
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Service != "s" || oe.RetryAfter < time.Second {
		t.Fatalf("Allow while open: %v", err)
	}
	time.Sleep(80 * time.Millisecond)
	d1, err1 := b.Allow("s")
	d2, err2 := b.Allow("s")
	_, err3 := b.Allow("s")
	if err1 != nil || err2 != nil || err3 == nil {
		t.Fatalf("half-open admitted %v %v %v, want exactly 2 probes", err1, err2, err3)
	}
	d1(NoFailure, 200)
	d2(NoFailure, 200)
	if b.State() != BreakerClosed {
		t.Fatalf("state %q after 2 good probes", b.State())
	}
}

func TestPassiveEjectionGrows(t *testing.T) {
	t.Parallel()
	on, _ := ParseConditions([]string{"connect_error"}, []int{500})
	p := &PassiveHealth{ConsecutiveFailures: 2, FailureOn: on, EjectionTime: time.Second, MaxEjectionTime: 3 * time.Second}
	tg := NewTarget(&url.URL{Scheme: "http", Host: "a"}, 1)
	if p.Record(tg, nil, ConnectError, 0) || !tg.Healthy() {
		t.Fatal("ejected after one failure")
	}
	if p.Record(tg, nil, NoFailure, 200); p.Record(tg, nil, NoFailure, 500) {
		t.Fatal("a success did not reset the streak")
	}
	if !p.Record(tg, nil, ConnectError, 0) || tg.Healthy() || !tg.Ejected() {
		t.Fatal("not ejected after two consecutive failures")
	}
	if left := time.Until(tg.EjectedUntil()); left < 900*time.Millisecond || left > time.Second {
		t.Fatalf("first ejection %v, want 1s", left)
	}
	// Expire it by hand, then a second ejection is doubled and a third capped.
	for i, want := range []time.Duration{2 * time.Second, 3 * time.Second} {
		tg.ejectedUntil.Store(time.Now().Add(-time.Millisecond).UnixNano())
		if tg.Ejected() {
			t.Fatal("still ejected after the time passed")
		}
		p.Record(tg, nil, NoFailure, 500)
		p.Record(tg, nil, NoFailure, 500)
		if left := time.Until(tg.EjectedUntil()); left < want-100*time.Millisecond || left > want {
			t.Fatalf("ejection %d lasts %v, want %v", i+2, left, want)
		}
	}
	// Canceled attempts say nothing about the target.
	tg2 := NewTarget(&url.URL{Scheme: "http", Host: "b"}, 1)
	for range 5 {
		p.Record(tg2, nil, Canceled, 0)
	}
	if !tg2.Healthy() {
		t.Fatal("ejected for canceled attempts")
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	past := time.Now().Add(-time.Millisecond)
	// A route's request timeout: a deadline the gateway set.
	routeDeadline := reqctx.WithDeadline(context.Background(), past)
	// A gRPC client's grpc-timeout, as the proxy marks it.
	clientDeadline := reqctx.WithDeadline(context.Background(), past)
	MarkClientDeadline(clientDeadline, &past)
	// An earlier deadline the gateway set beneath the client's (a fallback service's timeout).
	later := time.Now().Add(time.Hour)
	client := reqctx.WithDeadline(context.Background(), later)
	MarkClientDeadline(client, &later)
	underClient := reqctx.WithDeadline(client, past)
	tests := []struct {
		name   string
		parent context.Context
		err    error
		want   Failure
	}{
		{"nil", context.Background(), nil, NoFailure},
		{"dial", context.Background(), &net.OpError{Op: "dial", Err: errors.New("connection refused")}, ConnectError},
		{"deadline", context.Background(), context.DeadlineExceeded, Timeout},
		{"header timeout", context.Background(), errors.New("net/http: timeout awaiting response headers"), Timeout},
		{"reset", context.Background(), &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, Reset},
		{"eof", context.Background(), io.ErrUnexpectedEOF, Reset},
		{"caller gone", canceled, context.DeadlineExceeded, Canceled},
		{"route timeout", routeDeadline, context.DeadlineExceeded, Timeout},
		{"route timeout, transport saw a cancel", routeDeadline, fmt.Errorf("h1: %w", context.Canceled), Timeout},
		{"client's own deadline", clientDeadline, context.DeadlineExceeded, Canceled},
		{"gateway deadline under the client's", underClient, context.DeadlineExceeded, Timeout},
		{"client body past the route timeout", routeDeadline, &ClientBodyError{Err: io.ErrUnexpectedEOF}, Canceled},
		{"dial timeout", context.Background(), &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, ConnectError},
		{"dns timeout", context.Background(), &net.DNSError{Err: "i/o timeout", IsTimeout: true}, ConnectError},
		{"tls handshake timeout", context.Background(), errors.New("net/http: TLS handshake timeout"), ConnectError},
		{"per-try timeout", context.Background(), errPerTryTimeout, Timeout},
		{"client body cut short", context.Background(), fmt.Errorf("write: %w", &ClientBodyError{Err: io.ErrUnexpectedEOF}), Canceled},
		{"client body too slow", context.Background(), &ClientBodyError{Err: os.ErrDeadlineExceeded}, Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Classify(tc.parent, tc.err); got != tc.want {
				t.Fatalf("Classify = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestHealthCheckerStopsAndRestores checks the checker's thresholds, that Close stops its
// goroutines (goleak in TestMain) and that the last checker leaves its Targets healthy.
func TestHealthCheckerStopsAndRestores(t *testing.T) {
	t.Parallel()
	var sick atomic.Bool
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probes.Add(1)
		if r.URL.Path != "/hc" || sick.Load() {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/ignored-base")
	tg := NewTarget(u, 1)
	cfg := ActiveHealth{Path: "/hc", Interval: 10 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3}
	h1, err := StartHealthChecker("s", []*Target{tg}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := StartHealthChecker("s", []*Target{tg}, cfg, nil) // a second runtime's checker, as during a reload
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("probes", func() bool { return probes.Load() >= 4 })
	if !tg.Healthy() {
		t.Fatal("healthy target marked unhealthy")
	}
	sick.Store(true)
	wait("unhealthy", func() bool { return !tg.Healthy() })
	_ = h1.Close()
	if tg.Healthy() {
		t.Fatal("closing one of two checkers reset the verdict")
	}
	_ = h2.Close()
	_ = h2.Close() // idempotent
	if !tg.Healthy() {
		t.Fatal("a target left without a checker stays unhealthy")
	}
	// A probe cancelled by Close may still reach the handler after Close returns (the server
	// reads a request the client has given up on), so let stragglers land before counting.
	time.Sleep(50 * time.Millisecond)
	n := probes.Load()
	time.Sleep(100 * time.Millisecond) // ten intervals: a running checker would probe again
	if got := probes.Load(); got != n {
		t.Fatalf("probes continue after Close: %d more", got-n)
	}
}

func TestRegistryServiceStateSharedAndReleased(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ts := []*Target{NewTarget(u, 1)}
	reg := NewRegistry()
	cfg := ServiceConfig{
		Name: "s", Targets: ts, Balancer: RoundRobin,
		Breaker: &BreakerConfig{FailureThreshold: 1, RecoveryTimeout: time.Minute},
		Active:  &ActiveHealth{Path: "/", Interval: 10 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1},
	}
	cfg.Breaker.FailureOn.Any5xx = true
	s1, rel1, err := reg.AcquireService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s2, rel2, _ := reg.AcquireService(cfg)
	if s1 == s2 || s1.st != s2.st {
		t.Fatal("same config: want two Services sharing one state")
	}
	cfg2 := cfg
	cfg2.Breaker = &BreakerConfig{FailureThreshold: 2, RecoveryTimeout: time.Minute}
	s3, rel3, _ := reg.AcquireService(cfg2)
	if s3.st == s1.st {
		t.Fatal("changed breaker settings share the old state")
	}
	snap := reg.Snapshot()
	if len(snap) != 1 || snap[0].Name != "s" || snap[0].Breaker != BreakerClosed || len(snap[0].Targets) != 1 || !snap[0].Targets[0].Healthy {
		t.Fatalf("snapshot %+v", snap)
	}
	rel1()
	rel2()
	rel3()
	rel3() // release is idempotent
	if reg.states.Len() != 0 || len(reg.Snapshot()) != 0 {
		t.Fatal("states alive after the last release")
	}
}

func TestRunFallbackAndNoTarget(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	spareTransport := &http.Transport{}
	send := func(req *http.Request, tg *Target, tr http.RoundTripper) (*http.Response, error) {
		calls.Add(1)
		// The fallback service is reached through its own transport, the primary through the
		// caller's.
		if want := map[string]http.RoundTripper{"spare": spareTransport}[tg.URL.Host]; tr != want {
			t.Errorf("attempt to %s sent through %v, want %v", tg.URL.Host, tr, want)
		}
		if tg.URL.Host == "spare" {
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("spare" + req.URL.Path)), Request: req}, nil
		}
		return &http.Response{StatusCode: 503, Body: http.NoBody, Request: req}, nil
	}
	on, _ := ParseConditions([]string{"5xx"}, nil)
	spare, _ := NewService(ServiceConfig{Name: "spare", Balancer: RoundRobin, Targets: []*Target{NewTarget(&url.URL{Scheme: "http", Host: "spare", Path: "/v2"}, 1)},
		Transport: spareTransport})
	defer spare.Close()
	main, _ := NewService(ServiceConfig{
		Name: "main", Balancer: RoundRobin, Targets: []*Target{NewTarget(&url.URL{Scheme: "http", Host: "main"}, 1)},
		Breaker:  &BreakerConfig{FailureThreshold: 1, RecoveryTimeout: time.Minute, FailureOn: on},
		Fallback: &Fallback{Service: spare},
	})
	defer main.Close()
	req, _ := http.NewRequest("GET", "/x", nil)
	resp, _ := main.Run(req, "", send)
	resp.Body.Close()
	resp, err := main.Run(req, "", send)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "spare/v2/x" || calls.Load() != 2 {
		t.Fatalf("fallback body %q after %d calls", body, calls.Load())
	}

	down := NewTarget(&url.URL{Scheme: "http", Host: "down"}, 1)
	down.SetHealthy(false)
	for _, tryAnyway := range []bool{false, true} {
		s, _ := NewService(ServiceConfig{Name: "d", Balancer: RoundRobin, Targets: []*Target{down}, TryAnyway: tryAnyway})
		resp, err := s.Run(req, "", send)
		switch {
		case !tryAnyway && !errors.Is(err, ErrNoHealthyTarget):
			t.Fatalf("all unhealthy, fail: %v", err)
		case tryAnyway && (err != nil || resp.StatusCode != 503):
			t.Fatalf("all unhealthy, try_anyway: %v", err)
		}
		if resp != nil {
			resp.Body.Close()
		}
		s.Close()
	}
	if down.InFlight() != 0 {
		t.Fatal("in-flight count leaked")
	}
}

// TestRegistryRetryAttemptsChangeKeepsBudget: a reload that turns retries on (attempts 1 → 3)
// with the same budget settings must not reuse a state built without a retry budget (every
// request of the service would dereference the nil budget).
func TestRegistryRetryAttemptsChangeKeepsBudget(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ts := []*Target{NewTarget(u, 1)}
	reg := NewRegistry()
	retry := func(attempts int) *RetryConfig {
		return &RetryConfig{Attempts: attempts, Methods: []string{http.MethodGet}, BudgetPercent: 20, BudgetWindow: 10 * time.Second}
	}
	cfg := ServiceConfig{Name: "s", Targets: ts, Balancer: RoundRobin, Retry: retry(1),
		Transport: http.DefaultTransport, RequestTimeout: 5 * time.Second}
	_, rel1, err := reg.AcquireService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rel1()
	cfg.Retry = retry(3)
	s2, rel2, err := reg.AcquireService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rel2()
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	resp, err := s2.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

// TestConnectTimeoutIsConnectError: a connect timeout (a blackholed target that drops the SYN)
// is a failure to connect: nothing was sent, so retry_on [connect_error] (the setting that is
// safe for POST, Envoy's connect-failure) retries it and failure_on [connect_error] counts it.
func TestConnectTimeoutIsConnectError(t *testing.T) {
	t.Parallel()
	d := net.Dialer{Timeout: time.Nanosecond}
	_, err := d.Dial("tcp", "127.0.0.1:9")
	if err == nil {
		t.Skip("dial succeeded")
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("not a dial error: %v", err)
	}
	on, _ := ParseConditions([]string{"connect_error"}, nil)
	if f := Classify(context.Background(), err); !on.Match(f, 0) {
		t.Fatalf("dial error %q classified %s: not retried by retry_on [connect_error]", err, f)
	}
}

// TestFailurePercentCountsFinishedAttempts: failure_percent and min_requests count the attempts
// that finished in the window; attempts still in flight have no outcome yet and must not dilute
// the ratio. With 10 slow attempts pending, 4 of 4 finished attempts failing (100%) opens a 50%
// breaker.
func TestFailurePercentCountsFinishedAttempts(t *testing.T) {
	t.Parallel()
	b := NewBreaker("s", BreakerConfig{FailurePercent: 50, MinRequests: 4, Window: 10 * time.Second,
		RecoveryTimeout: time.Minute, HalfOpenRequests: 1, FailureOn: Conditions{Any5xx: true}})
	var pending []func(Failure, int)
	for range 10 {
		done, err := b.Allow("s")
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, done)
	}
	for range 4 {
		done, err := b.Allow("s")
		if err != nil {
			break
		}
		done(StatusFailure, 503)
	}
	if st := b.State(); st != BreakerOpen {
		t.Errorf("4/4 finished attempts failed with 10 in flight: breaker %s, want open", st)
	}
	for _, d := range pending {
		d(NoFailure, 200)
	}
}

// TestPassiveHealthKeepsLastHealthyTarget: passive health does not eject a Target when no other
// Target of its service would get traffic, unless the service tries anyway (nil peers).
func TestPassiveHealthKeepsLastHealthyTarget(t *testing.T) {
	t.Parallel()
	on, _ := ParseConditions([]string{"connect_error"}, nil)
	p := &PassiveHealth{ConsecutiveFailures: 1, FailureOn: on, EjectionTime: time.Minute, MaxEjectionTime: time.Minute}

	ts := newTargets(1, 1)
	if !p.Record(ts[0], ts, ConnectError, 0) {
		t.Fatal("t0 not ejected while t1 takes traffic")
	}
	if p.Record(ts[1], ts, ConnectError, 0) || !ts[1].Healthy() {
		t.Fatal("t1, the last healthy target, ejected")
	}

	ts = newTargets(1, 1)
	ts[1].SetHealthy(false) // down by the active check: it takes no traffic either
	if p.Record(ts[0], ts, ConnectError, 0) || !ts[0].Healthy() {
		t.Fatal("t0 ejected while t1 is down")
	}

	if one := newTargets(1); !p.Record(one[0], nil, ConnectError, 0) {
		t.Fatal("with nil peers (try_anyway) the only target is not ejected")
	}

	// Targets failing at the same moment: one of them always stays.
	ts = newTargets(1, 1, 1, 1, 1, 1, 1, 1)
	var wg sync.WaitGroup
	for _, tg := range ts {
		wg.Go(func() { p.Record(tg, ts, ConnectError, 0) })
	}
	wg.Wait()
	healthy := 0
	for _, tg := range ts {
		if tg.Healthy() {
			healthy++
		}
	}
	if healthy != 1 {
		t.Fatalf("%d of %d targets left after all failed at once, want 1", healthy, len(ts))
	}
}

// TestPerTryTimeoutBoundsTheHeadOnly: the per-try timeout cuts an attempt whose response head does
// not come in time (a Timeout, retried), and no longer applies once the head has come: the body
// streams for as long as the caller's own deadline allows.
func TestPerTryTimeoutBoundsTheHeadOnly(t *testing.T) {
	t.Parallel()
	const perTry = 50 * time.Millisecond
	on, _ := ParseConditions([]string{"timeout"}, nil)
	s, _ := NewService(ServiceConfig{Name: "s", Balancer: RoundRobin, Targets: newTargets(1, 1),
		Retry: &RetryConfig{Attempts: 2, Methods: []string{http.MethodGet}, RetryOn: on, PerTryTimeout: perTry,
			BudgetPercent: 100, BudgetMinRetries: 10, BudgetWindow: 10 * time.Second}})
	defer s.Close()
	var calls atomic.Int64
	send := func(req *http.Request, _ *Target, _ http.RoundTripper) (*http.Response, error) {
		if calls.Add(1) == 1 {
			<-req.Context().Done() // no head: the per-try timeout must end the wait
			return nil, req.Context().Err()
		}
		ctx := req.Context()
		body := io.MultiReader(strings.NewReader("first;"), readerFunc(func(p []byte) (int, error) {
			time.Sleep(3 * perTry) // past the per-try timeout, mid-body
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			return copy(p, "second"), io.EOF
		}))
		return &http.Response{StatusCode: 200, Body: io.NopCloser(body), Request: req}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/x", nil)
	resp, err := s.Run(req, "", send)
	if err != nil {
		t.Fatalf("run: %v (after %d attempts)", err, calls.Load())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "first;second" || calls.Load() != 2 {
		t.Fatalf("body %q, err %v after %d attempts; want the whole body from the second", body, err, calls.Load())
	}

	// A single attempt cut by the per-try timeout reports a timeout (a 504 at the proxy).
	calls.Store(0)
	one, _ := NewService(ServiceConfig{Name: "one", Balancer: RoundRobin, Targets: newTargets(1),
		Retry: &RetryConfig{Attempts: 2, Methods: []string{http.MethodPost}, PerTryTimeout: perTry}})
	defer one.Close()
	if _, err := one.Run(req, "", send); !IsTimeout(err) || errors.Is(err, context.Canceled) || Classify(ctx, err) != Timeout {
		t.Fatalf("per-try timeout error %v, want a timeout", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
