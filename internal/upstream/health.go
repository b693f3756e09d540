package upstream

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// PassiveHealth is outlier ejection: a Target whose attempts fail ConsecutiveFailures times in
// a row leaves the balancer for EjectionTime, doubled at each further ejection up to
// MaxEjectionTime. A Target that then answers well for MaxEjectionTime after its last ejection
// starts over at EjectionTime. The state lives on the Target, so it survives reloads with it.
//
// Passive health never takes out a service's last Target that gets traffic (see Record): a
// burst of failures from every Target at once (a dependency they share blipped) would otherwise
// fail every request for the whole ejection time, after the Targets recovered. Active health
// checks, which probe a Target that gets no traffic, are not bound by this.
type PassiveHealth struct {
	ConsecutiveFailures int
	FailureOn           Conditions
	EjectionTime        time.Duration
	MaxEjectionTime     time.Duration

	// mu serializes ejections, so that two Targets reaching their threshold at once cannot
	// both go, each counting on the other to stay.
	mu sync.Mutex
}

// Record feeds one attempt's outcome on t into outlier detection. It reports whether t was
// ejected by it.
//
// peers, when not nil, are the Targets of t's Service: t is then not ejected while it is the
// only healthy one among them (Envoy's max_ejection_percent and panic threshold likewise keep
// traffic flowing); its failure streak starts over. nil means t may go whatever is left, for a
// Service that sends to unhealthy Targets anyway when none is healthy.
func (p *PassiveHealth) Record(t *Target, peers []*Target, f Failure, status int) bool {
	if f == Canceled {
		return false
	}
	if !p.FailureOn.Match(f, status) {
		t.consecutiveFailures.Store(0)
		if n := t.ejections.Load(); n > 0 && !t.Ejected() {
			// Forgive earlier ejections once the Target has stayed in for a while.
			if last := t.lastEjectionEnd.Load(); last != 0 && time.Since(time.Unix(0, last)) >= p.MaxEjectionTime {
				t.ejections.CompareAndSwap(n, 0)
			}
		}
		return false
	}
	if int(t.consecutiveFailures.Add(1)) < p.ConsecutiveFailures || t.Ejected() {
		return false
	}
	t.consecutiveFailures.Store(0)
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.Ejected() || (peers != nil && !othersHealthy(peers, t)) {
		return false
	}
	n := t.ejections.Add(1)
	d := p.EjectionTime
	for i := int32(1); i < n && d < p.MaxEjectionTime; i++ {
		d *= 2
	}
	d = min(d, p.MaxEjectionTime)
	until := time.Now().Add(d).UnixNano()
	t.ejectedUntil.Store(until)
	t.lastEjectionEnd.Store(until)
	return true
}

// othersHealthy reports whether a Target of ts other than t gets traffic.
func othersHealthy(ts []*Target, t *Target) bool {
	for _, o := range ts {
		if o != t && o.Healthy() {
			return true
		}
	}
	return false
}

// ActiveHealth configures active health checks; see config.ActiveHealthCheck.
type ActiveHealth struct {
	Path               string
	Interval           time.Duration
	Timeout            time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
	// ExpectedStatuses are the healthy statuses; empty means any 2xx or 3xx.
	ExpectedStatuses []int
	// Protocol and TLS are those of the service's pool (see TransportSettings): a probe must
	// reach a target the way a request does, or it fails the handshake with a target behind a
	// private CA or requiring a client certificate, or speaks HTTP/1.1 to an h2c-only (gRPC)
	// target, and marks a healthy target down.
	Protocol string
	TLS      TLSSettings
}

func (a *ActiveHealth) healthyStatus(code int) bool {
	if len(a.ExpectedStatuses) == 0 {
		return code >= 200 && code < 400
	}
	return slices.Contains(a.ExpectedStatuses, code)
}

// HealthChecker probes a set of Targets on a schedule and marks them healthy or unhealthy. It
// runs one goroutine, plus one per probe in flight; Close stops them all and waits.
type HealthChecker struct {
	cfg     ActiveHealth
	targets []*Target
	client  *http.Client
	tr      *http.Transport
	logger  *slog.Logger
	service string

	cancel context.CancelFunc
	done   chan struct{}

	// Per-Target streak counters, touched only by the checker goroutine's probe round.
	mu       sync.Mutex
	goodRun  []int
	badRun   []int
	verdicts []bool // current verdict per Target (true: healthy)
}

// StartHealthChecker starts probing targets. The first round runs at once. It fails only when
// the TLS files of cfg cannot be loaded.
func StartHealthChecker(service string, targets []*Target, cfg ActiveHealth, logger *slog.Logger) (*HealthChecker, error) {
	if logger == nil {
		logger = slog.Default()
	}
	// The probes' transport is built as the service's pool is, from the same settings, so that
	// the two cannot drift apart; it is a transport of its own, though, so that probes never
	// ride on (or keep alive) the pooled connections requests use.
	tr, err := NewStdTransport(TransportSettings{Service: service, Connect: cfg.Timeout, Protocol: cfg.Protocol, TLS: cfg.TLS})
	if err != nil {
		return nil, err
	}
	// A fresh connection per probe checks that the target still accepts connections, and
	// leaves nothing behind when the checker stops.
	tr.DisableKeepAlives = true
	ctx, cancel := context.WithCancel(context.Background())
	h := &HealthChecker{
		cfg:      cfg,
		targets:  targets,
		client:   &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		tr:       tr,
		logger:   logger,
		service:  service,
		cancel:   cancel,
		done:     make(chan struct{}),
		goodRun:  make([]int, len(targets)),
		badRun:   make([]int, len(targets)),
		verdicts: make([]bool, len(targets)),
	}
	for i, t := range targets {
		t.checkers.Add(1)
		h.verdicts[i] = t.ActiveHealthy()
	}
	go h.run(ctx)
	return h, nil
}

func (h *HealthChecker) run(ctx context.Context) {
	defer close(h.done)
	tick := time.NewTicker(h.cfg.Interval)
	defer tick.Stop()
	for {
		h.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// round probes every Target concurrently and waits for all of them.
func (h *HealthChecker) round(ctx context.Context) {
	var wg sync.WaitGroup
	for i, t := range h.targets {
		wg.Go(func() {
			ok := h.probe(ctx, t)
			if ctx.Err() != nil {
				return // stopping: a probe cut short says nothing about the target
			}
			h.record(i, t, ok)
		})
	}
	wg.Wait()
}

func (h *HealthChecker) probe(ctx context.Context, t *Target) bool {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	u := *t.URL
	u.Path, u.RawPath, u.RawQuery = h.cfg.Path, "", ""
	if i := strings.IndexByte(h.cfg.Path, '?'); i >= 0 {
		u.Path, u.RawQuery = h.cfg.Path[:i], h.cfg.Path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "gatehouse-health-check")
	resp, err := h.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return h.cfg.healthyStatus(resp.StatusCode)
}

// record applies one probe result with the thresholds, and stores the verdict on every round so
// that a verdict overwritten by another checker of the same Target (during a reload) is restored.
func (h *HealthChecker) record(i int, t *Target, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ok {
		h.goodRun[i]++
		h.badRun[i] = 0
		if !h.verdicts[i] && h.goodRun[i] >= h.cfg.HealthyThreshold {
			h.verdicts[i] = true
			h.logger.Info("target healthy", "service", h.service, "target", t.String())
		}
	} else {
		h.badRun[i]++
		h.goodRun[i] = 0
		if h.verdicts[i] && h.badRun[i] >= h.cfg.UnhealthyThreshold {
			h.verdicts[i] = false
			h.logger.Warn("target unhealthy", "service", h.service, "target", t.String())
		}
	}
	t.SetHealthy(h.verdicts[i])
}

// Close stops the checker and waits for its goroutines. A Target no other checker probes is
// marked healthy again. Close is idempotent.
func (h *HealthChecker) Close() error {
	h.cancel()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.targets != nil {
		for _, t := range h.targets {
			if t.checkers.Add(-1) == 0 {
				t.SetHealthy(true)
			}
		}
		h.targets = nil
	}
	h.tr.CloseIdleConnections()
	return nil
}
