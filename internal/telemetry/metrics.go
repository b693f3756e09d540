package telemetry

import (
	"maps"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// LatencyBuckets are the upper bounds, in seconds, of the request and upstream latency
// histograms.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NoRoute is the route (and service) label of requests that matched no route (400, 404, 405,
// 431 answered at the edge).
const NoRoute = "-"

// BreakerState is a circuit breaker's state as the gatehouse_circuit_breaker_state gauge
// reports it.
type BreakerState int

// Circuit breaker states.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// String returns "closed", "half_open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerHalfOpen:
		return "half_open"
	case BreakerOpen:
		return "open"
	default:
		return "closed"
	}
}

// MetricsOptions configures NewMetrics.
type MetricsOptions struct {
	// GoRuntime adds the Go runtime and process collectors.
	GoRuntime bool
}

// TargetStatus is one upstream target as the target gauges report it.
type TargetStatus struct {
	Service  string
	Target   string
	Healthy  bool
	InFlight int64
}

// Metrics is the gateway's Prometheus registry and every metric family it exports. All
// methods are safe for concurrent use and are no-ops on a nil *Metrics, so code that records
// metrics needs no "are metrics enabled" checks.
//
// The request path records through a RouteMetrics bound once per route (no label hashing per
// request); the recording methods for rate limits, auth, cache and breakers are for the
// middleware and resilience packages.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   prometheus.Gauge
	attempts   *prometheus.CounterVec
	attemptDur *prometheus.HistogramVec
	rateLimit  *prometheus.CounterVec
	authFail   *prometheus.CounterVec
	cache      *prometheus.CounterVec
	breaker    *prometheus.GaugeVec
	breakerMu  sync.Mutex
	breakerSet map[BreakerKey]BreakerState // the gauges ReplaceBreakerStates last set
	reloads    *prometheus.CounterVec
	reloadOK   prometheus.Gauge
	activeAt   prometheus.Gauge

	mu      sync.Mutex
	routes  map[routeKey]*RouteMetrics
	targets atomic.Pointer[func() []TargetStatus]

	// The per-request policy counters, resolved once per label set (WithLabelValues hashes
	// the labels and takes the vector's lock on every call).
	rateLimitC cowMap[rateLimitKey, prometheus.Counter]
	cacheC     cowMap[cacheKey, prometheus.Counter]
}

type rateLimitKey struct {
	route, limit string
	allowed      bool
}

type cacheKey struct {
	route string
	hit   bool
}

// cowMap is a map copied on write (under mu) and read without a lock, for the instruments
// resolved once per label set on the request path (a vector's WithLabelValues hashes the labels
// and takes its lock on every call; a read-write mutex's reader count is one cache line every
// processor writes). Its keys come from the configuration; store stops adding past max, and the
// caller then uses what it made.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

func (c *cowMap[K, V]) load(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// store adds v under k unless k is there already (its value is returned then) or the map
// holds max entries.
func (c *cowMap[K, V]) store(k K, v V, max int) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]V
	if m := c.m.Load(); m != nil {
		old = *m
	}
	if have, ok := old[k]; ok {
		return have
	}
	if len(old) < max {
		m := maps.Clone(old)
		if m == nil {
			m = map[K]V{}
		}
		m[k] = v
		c.m.Store(&m)
	}
	return v
}

const maxCachedLabelSets = 4096

type routeKey struct{ route, service string }

// NewMetrics creates the registry with every metric family registered.
func NewMetrics(o MetricsOptions) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), routes: map[routeKey]*RouteMetrics{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_requests_total",
		Help: "Requests served, by route, service, method and status class (route \"-\": matched no route).",
	}, []string{"route", "service", "method", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_request_duration_seconds",
		Help:    "Time from receiving a request to the end of its response, by route, service, method and status class.",
		Buckets: LatencyBuckets,
	}, []string{"route", "service", "method", "status"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_requests_in_flight",
		Help: "Requests being served now.",
	})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_upstream_attempts_total",
		Help: "Upstream attempts by service, target and result (status class, or \"error\" when no response came back).",
	}, []string{"service", "target", "result"})
	m.attemptDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_upstream_attempt_duration_seconds",
		Help:    "Time from sending an upstream attempt to its response headers (or its failure), by service and target.",
		Buckets: LatencyBuckets,
	}, []string{"service", "target"})
	m.rateLimit = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_ratelimit_decisions_total",
		Help: "Rate-limit decisions by route, limit and decision (allowed, denied).",
	}, []string{"route", "limit", "decision"})
	m.authFail = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_auth_failures_total",
		Help: "Rejected authentication or authorization by route and reason.",
	}, []string{"route", "reason"})
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_cache_lookups_total",
		Help: "Response cache lookups by route and result (hit, miss).",
	}, []string{"route", "result"})
	m.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gatehouse_circuit_breaker_state",
		Help: "Circuit breaker state by service and target: 0 closed, 1 half-open, 2 open.",
	}, []string{"service", "target"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_config_reloads_total",
		Help: "Config reload attempts by result (success, failure).",
	}, []string{"result"})
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_config_last_reload_successful",
		Help: "1 if the last config reload succeeded (or none was attempted), 0 if it was rejected.",
	})
	m.activeAt = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gatehouse_config_active_timestamp_seconds",
		Help: "Unix time at which the config serving now was compiled.",
	})
	m.reloadOK.Set(1)
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	m.reg.MustRegister(m.requests, m.duration, m.inFlight, m.attempts, m.attemptDur, m.rateLimit,
		m.authFail, m.cache, m.breaker, m.reloads, m.reloadOK, m.activeAt, targetCollector{m})
	if o.GoRuntime {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Handler serves the metrics in the Prometheus text (or OpenMetrics) format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4})
}

// Registry returns the underlying registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Route returns the request instruments of a route, bound once (at compile time) so recording
// a request costs no label lookup. The same route and service give the same RouteMetrics
// across reloads. Use NoRoute for requests that matched no route.
func (m *Metrics) Route(route, service string) *RouteMetrics {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := routeKey{route, service}
	rm := m.routes[k]
	if rm == nil {
		rm = &RouteMetrics{m: m, route: route, service: service}
		m.routes[k] = rm
	}
	return rm
}

// RequestStarted and RequestDone track the in-flight gauge.
func (m *Metrics) RequestStarted() {
	if m != nil {
		m.inFlight.Inc()
	}
}

// RequestDone decrements the in-flight gauge.
func (m *Metrics) RequestDone() {
	if m != nil {
		m.inFlight.Dec()
	}
}

// RateLimitDecision counts one rate-limit decision of limit (its name or index) on route.
func (m *Metrics) RateLimitDecision(route, limit string, allowed bool) {
	if m == nil {
		return
	}
	k := rateLimitKey{route, limit, allowed}
	c, ok := m.rateLimitC.load(k)
	if !ok {
		d := "denied"
		if allowed {
			d = "allowed"
		}
		c = m.rateLimitC.store(k, m.rateLimit.WithLabelValues(route, limit, d), maxCachedLabelSets)
	}
	c.Inc()
}

// AuthFailure counts a rejected request on route; reason is a short stable code such as
// "missing_token", "invalid_signature", "expired", "unknown_key", "forbidden".
func (m *Metrics) AuthFailure(route, reason string) {
	if m != nil {
		m.authFail.WithLabelValues(route, reason).Inc()
	}
}

// CacheLookup counts a response-cache hit or miss on route.
func (m *Metrics) CacheLookup(route string, hit bool) {
	if m == nil {
		return
	}
	k := cacheKey{route, hit}
	c, ok := m.cacheC.load(k)
	if !ok {
		r := "miss"
		if hit {
			r = "hit"
		}
		c = m.cacheC.store(k, m.cache.WithLabelValues(route, r), maxCachedLabelSets)
	}
	c.Inc()
}

// SetBreakerState records the circuit breaker state of a service's target (target "" for a
// breaker per service).
func (m *Metrics) SetBreakerState(service, target string, s BreakerState) {
	if m != nil {
		m.breaker.WithLabelValues(service, target).Set(float64(s))
	}
}

// BreakerKey names one breaker gauge: a service and its target ("" for the service's).
type BreakerKey struct{ Service, Target string }

// ReplaceBreakerStates sets the breaker gauges to states and deletes those of breakers no longer
// there (a service or target a reload removed), so that no gauge stays "open" forever for a
// breaker that does not exist.
func (m *Metrics) ReplaceBreakerStates(states map[BreakerKey]BreakerState) {
	if m == nil {
		return
	}
	m.breakerMu.Lock()
	defer m.breakerMu.Unlock()
	for k, s := range states {
		m.breaker.WithLabelValues(k.Service, k.Target).Set(float64(s))
	}
	for k := range m.breakerSet {
		if _, ok := states[k]; !ok {
			m.breaker.DeleteLabelValues(k.Service, k.Target)
		}
	}
	m.breakerSet = states
}

// ConfigReload counts a reload attempt; when it succeeded, active is when the new config was
// compiled.
func (m *Metrics) ConfigReload(ok bool, active time.Time) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.reloadOK.Set(1)
		m.SetActiveConfig(active)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.reloadOK.Set(0)
}

// SetActiveConfig records when the config serving now was compiled.
func (m *Metrics) SetActiveConfig(at time.Time) {
	if m != nil {
		m.activeAt.Set(float64(at.UnixNano()) / 1e9)
	}
}

// SetTargetSource sets the function the target gauges (gatehouse_target_healthy,
// gatehouse_target_in_flight) read at each scrape.
func (m *Metrics) SetTargetSource(f func() []TargetStatus) {
	if m != nil {
		m.targets.Store(&f)
	}
}

var (
	targetHealthyDesc  = prometheus.NewDesc("gatehouse_target_healthy", "1 if the upstream target may receive traffic, 0 if it is marked down.", []string{"service", "target"}, nil)
	targetInFlightDesc = prometheus.NewDesc("gatehouse_target_in_flight", "Upstream attempts in progress to the target.", []string{"service", "target"}, nil)
)

// targetCollector reads target state at scrape time, so it is never stale and costs nothing
// per request.
type targetCollector struct{ m *Metrics }

func (c targetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- targetHealthyDesc
	ch <- targetInFlightDesc
}

func (c targetCollector) Collect(ch chan<- prometheus.Metric) {
	fp := c.m.targets.Load()
	if fp == nil {
		return
	}
	seen := map[[2]string]bool{}
	for _, t := range (*fp)() {
		k := [2]string{t.Service, t.Target}
		if seen[k] {
			continue // two routes' services can share a target set
		}
		seen[k] = true
		h := 0.0
		if t.Healthy {
			h = 1
		}
		ch <- prometheus.MustNewConstMetric(targetHealthyDesc, prometheus.GaugeValue, h, t.Service, t.Target)
		ch <- prometheus.MustNewConstMetric(targetInFlightDesc, prometheus.GaugeValue, float64(t.InFlight), t.Service, t.Target)
	}
}

// Method indexes: known methods get their own label value, anything else is "OTHER", so a
// client cannot grow the label set.
var methods = [...]string{"OTHER", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

func methodIndex(m string) int {
	switch m {
	case "GET":
		return 1
	case "HEAD":
		return 2
	case "POST":
		return 3
	case "PUT":
		return 4
	case "PATCH":
		return 5
	case "DELETE":
		return 6
	case "OPTIONS":
		return 7
	case "CONNECT":
		return 8
	case "TRACE":
		return 9
	}
	return 0
}

var classes = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// StatusClass returns "1xx" … "5xx" for status (0, unwritten, counts as 200; anything outside
// 100–599 as 5xx).
func StatusClass(status int) string { return classes[classIndex(status)] }

func classIndex(status int) int {
	switch {
	case status == 0:
		return 1
	case status < 100 || status >= 600:
		return 4
	}
	return status/100 - 1
}

// RouteMetrics are the request instruments of one route, bound once. Safe for concurrent use;
// methods on a nil *RouteMetrics do nothing.
type RouteMetrics struct {
	m              *Metrics
	route, service string
	cells          [len(methods)][len(classes)]atomic.Pointer[requestCell]

	targets cowMap[string, *attemptCells]
}

type requestCell struct {
	count prometheus.Counter
	dur   prometheus.Histogram
}

type attemptCells struct {
	result [len(classes) + 1]atomic.Pointer[prometheus.Counter] // classes, then "error"
	dur    prometheus.Observer
}

// Observe records one finished request: its method, response status and duration.
func (rm *RouteMetrics) Observe(method string, status int, d time.Duration) {
	if rm == nil {
		return
	}
	mi, ci := methodIndex(method), classIndex(status)
	c := rm.cells[mi][ci].Load()
	if c == nil {
		c = rm.cell(mi, ci)
	}
	c.count.Inc()
	c.dur.Observe(d.Seconds())
}

func (rm *RouteMetrics) cell(mi, ci int) *requestCell {
	lv := []string{rm.route, rm.service, methods[mi], classes[ci]}
	c := &requestCell{count: rm.m.requests.WithLabelValues(lv...), dur: rm.m.duration.WithLabelValues(lv...).(prometheus.Histogram)}
	if !rm.cells[mi][ci].CompareAndSwap(nil, c) {
		return rm.cells[mi][ci].Load()
	}
	return c
}

// UpstreamAttempt records one upstream attempt to target (host:port) of the route's service:
// its response status (err != nil: no response) and its duration.
func (rm *RouteMetrics) UpstreamAttempt(target string, status int, err error, d time.Duration) {
	if rm == nil {
		return
	}
	a, ok := rm.targets.load(target)
	if !ok {
		// Bounded: targets come from config, but be safe.
		a = rm.targets.store(target, &attemptCells{dur: rm.m.attemptDur.WithLabelValues(rm.service, target)}, 1024)
	}
	i := len(classes)
	if err == nil {
		i = classIndex(status)
	}
	cp := a.result[i].Load()
	if cp == nil {
		result := "error"
		if i < len(classes) {
			result = classes[i]
		}
		c := rm.m.attempts.WithLabelValues(rm.service, target, result)
		a.result[i].CompareAndSwap(nil, &c)
		cp = a.result[i].Load()
	}
	(*cp).Inc()
	a.dur.Observe(d.Seconds())
}

// RouteStat is a route's cumulative request figures, for the dashboard: it computes rates and
// percentiles from the difference between two polls.
type RouteStat struct {
	Route    string  `json:"route"`
	Service  string  `json:"service"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"` // 5xx responses
	Client   uint64  `json:"client_errors"`
	Sum      float64 `json:"duration_sum_seconds"`
	// Buckets are cumulative counts for each of LatencyBuckets (then +Inf = Requests).
	Buckets []uint64 `json:"buckets"`
}

// RouteStats returns the cumulative figures of every route seen so far, sorted by route.
func (m *Metrics) RouteStats() []RouteStat {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	rms := make([]*RouteMetrics, 0, len(m.routes))
	for _, rm := range m.routes {
		rms = append(rms, rm)
	}
	m.mu.Unlock()
	out := make([]RouteStat, 0, len(rms))
	var pb dto.Metric
	for _, rm := range rms {
		st := RouteStat{Route: rm.route, Service: rm.service, Buckets: make([]uint64, len(LatencyBuckets))}
		for mi := range rm.cells {
			for ci := range rm.cells[mi] {
				c := rm.cells[mi][ci].Load()
				if c == nil {
					continue
				}
				pb.Reset()
				if c.dur.Write(&pb) != nil || pb.Histogram == nil {
					continue
				}
				h := pb.Histogram
				n := h.GetSampleCount()
				st.Requests += n
				st.Sum += h.GetSampleSum()
				switch ci {
				case 4:
					st.Errors += n
				case 3:
					st.Client += n
				}
				for i, b := range h.GetBucket() {
					if i < len(st.Buckets) {
						st.Buckets[i] += b.GetCumulativeCount()
					}
				}
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Route != out[j].Route {
			return out[i].Route < out[j].Route
		}
		return out[i].Service < out[j].Service
	})
	return out
}

// InFlight returns the in-flight gauge's value.
func (m *Metrics) InFlight() float64 {
	if m == nil {
		return 0
	}
	var pb dto.Metric
	if m.inFlight.Write(&pb) != nil {
		return 0
	}
	return pb.GetGauge().GetValue()
}

// Name returns the route label ("" for a nil RouteMetrics).
func (rm *RouteMetrics) Name() string {
	if rm == nil {
		return ""
	}
	return rm.route
}

// Service returns the service label ("" for a nil RouteMetrics).
func (rm *RouteMetrics) Service() string {
	if rm == nil {
		return ""
	}
	return rm.service
}
