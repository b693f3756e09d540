package config

import (
	"fmt"
	"strings"
	"time"
)

// Failure conditions accepted in failure_on and retry_on.
var failureConditions = []string{"connect_error", "timeout", "reset", "5xx", "gateway_error"}

// defaultFailureOn is what counts as a failure for breakers and passive health checks by default.
var defaultFailureOn = []string{"connect_error", "timeout", "reset", "5xx"}

// defaultRetryOn is what is retried by default.
var defaultRetryOn = []string{"connect_error", "reset", "timeout", "gateway_error"}

// defaultRetryMethods are the idempotent methods (RFC 9110 §9.2.2) retried by default.
var defaultRetryMethods = []string{"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}

// CircuitBreaker stops calls to a failing service for a while: after too many failed attempts it
// opens, and requests then fail at once with 503 service_unavailable and a Retry-After header (or
// get the fallback) without reaching a target. After recovery_timeout it lets a few probe requests
// through (half-open): if they succeed it closes, if one fails it opens again. Breaker state
// survives reloads while the service's targets and breaker settings are unchanged.
type CircuitBreaker struct {
	// FailureThreshold opens the breaker after this many consecutive failed attempts; 0 turns this
	// rule off. Default: 5, or 0 when failure_percent is set.
	FailureThreshold int `yaml:"failure_threshold"`
	// FailurePercent opens the breaker when at least this percentage (1-100) of the attempts that
	// finished in the rolling window failed, once it holds min_requests of them (attempts still in
	// flight count neither way). Default: 0 (rule off).
	FailurePercent int `yaml:"failure_percent"`
	// MinRequests is how many finished attempts the window must hold before failure_percent
	// applies. Default: 20.
	MinRequests int `yaml:"min_requests"`
	// Window is the rolling window failure_percent is measured over. Default: 10s.
	Window Duration `yaml:"window"`
	// RecoveryTimeout is how long the breaker stays open before it admits probe requests.
	// Default: 30s.
	RecoveryTimeout Duration `yaml:"recovery_timeout"`
	// HalfOpenRequests is how many probe requests a half-open breaker admits; when that many
	// succeed it closes, and any failure opens it again. Default: 1.
	HalfOpenRequests int `yaml:"half_open_requests"`
	// FailureOn lists what makes an attempt a failure: connect_error (the target refused or could
	// not be reached, connect and TLS handshake timeouts included), timeout (the route's or the
	// attempt's own, not a gRPC client's grpc-timeout), reset (the connection broke before the response headers), 5xx (any
	// 5xx status) and gateway_error (502, 503 or 504). Default: [connect_error, timeout, reset, 5xx].
	FailureOn []string `yaml:"failure_on"`
	// FailureStatuses are further response statuses that count as failures, e.g. [429].
	FailureStatuses []int `yaml:"failure_statuses"`
	// PerTarget keeps one breaker per target instead of one for the whole service: a request then
	// goes to a target whose breaker is closed, and fails fast only when every target's is open.
	// Default: false.
	PerTarget bool `yaml:"per_target"`
	// Fallback answers requests while the breaker is open instead of the 503 error.
	Fallback *Fallback `yaml:"fallback"`
}

// Fallback is what a request gets while its service's circuit breaker is open: either a static
// response (status and body) or the answer of another service.
type Fallback struct {
	// Status of the static response. Default: 200.
	Status int `yaml:"status"`
	// Body of the static response, e.g. '{"items": [], "degraded": true}'.
	Body string `yaml:"body"`
	// ContentType of the static response. Default: application/json.
	ContentType string `yaml:"content_type"`
	// Service, instead of a static response, proxies the request to this other service (with its
	// own breaker, retries, health, transport, TLS, pool and timeouts). It must not itself have a
	// fallback service.
	Service string `yaml:"service"`
}

// HealthCheck configures active and passive health checking of a service's targets. An unhealthy
// target gets no traffic until it is healthy again.
type HealthCheck struct {
	// Active probes every target on a schedule.
	Active *ActiveHealthCheck `yaml:"active"`
	// Passive ejects a target that fails consecutive real requests.
	Passive *PassiveHealthCheck `yaml:"passive"`
	// AllUnhealthy is what happens when no target is healthy: "fail" answers 503
	// service_unavailable at once, "try_anyway" sends the request to a target regardless.
	// Default: fail.
	AllUnhealthy string `yaml:"all_unhealthy"`
}

// ActiveHealthCheck probes each target with an HTTP GET on a schedule. A target turns unhealthy
// after unhealthy_threshold failed probes in a row and healthy again after healthy_threshold
// good ones. Targets start healthy.
type ActiveHealthCheck struct {
	// Path requested on each target (on its scheme and host; the target URL's own path is not
	// prepended), e.g. /healthz. Required.
	Path string `yaml:"path"`
	// Interval between probes of a target. Default: 10s.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one probe. Default: 2s.
	Timeout Duration `yaml:"timeout"`
	// HealthyThreshold is how many good probes in a row make an unhealthy target healthy.
	// Default: 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold is how many failed probes in a row make a target unhealthy. Default: 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// ExpectedStatuses are the probe statuses that count as healthy. Default: any 2xx or 3xx.
	ExpectedStatuses []int `yaml:"expected_statuses"`
}

// PassiveHealthCheck (outlier ejection) watches real traffic: a target whose attempts fail
// consecutive_failures times in a row is ejected for ejection_time, doubled at each further
// ejection up to max_ejection_time. A target that then works for max_ejection_time starts over.
// The service's last healthy target is never ejected (unless all_unhealthy is try_anyway): a
// burst of failures must not turn into an outage for ejection_time.
type PassiveHealthCheck struct {
	// ConsecutiveFailures ejects a target after this many failed attempts in a row. Default: 5.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// FailureOn lists what makes an attempt a failure, as in circuit_breaker.failure_on.
	// Default: [connect_error, timeout, reset, 5xx].
	FailureOn []string `yaml:"failure_on"`
	// FailureStatuses are further response statuses that count as failures.
	FailureStatuses []int `yaml:"failure_statuses"`
	// EjectionTime is how long the first ejection lasts. Default: 30s.
	EjectionTime Duration `yaml:"ejection_time"`
	// MaxEjectionTime caps the doubling ejection time. Default: 5m.
	MaxEjectionTime Duration `yaml:"max_ejection_time"`
}

// Retries configures retrying failed attempts, each on another target when there is one. Only
// requests whose body is empty or fits max_body_bytes are retried, each retry waits an
// exponential backoff with jitter, and a retry budget caps retries to a share of the requests so
// that a failing service is not hit with a retry storm. Every attempt stays within the route's
// request timeout and the client's own deadline.
type Retries struct {
	// Attempts is the most attempts a request gets, the first included (1 to 10; 1 turns
	// retries off). Default: 3.
	Attempts int `yaml:"attempts"`
	// Methods that may be retried. Add POST or PATCH only for endpoints that are idempotent.
	// Default: [GET, HEAD, OPTIONS, PUT, DELETE, TRACE].
	Methods []string `yaml:"methods"`
	// RetryOn lists the failures that are retried, with the names of circuit_breaker.failure_on.
	// Default: [connect_error, reset, timeout, gateway_error].
	RetryOn []string `yaml:"retry_on"`
	// RetryStatuses are further response statuses that are retried, e.g. [429].
	RetryStatuses []int `yaml:"retry_statuses"`
	// PerTryTimeout bounds each attempt until its response headers arrive (inside the route's
	// request timeout); the body is then bounded by the request timeout only, so a stream is not
	// cut. "0s" leaves only the request timeout. Default: 0s.
	PerTryTimeout Duration `yaml:"per_try_timeout"`
	// Backoff is the base wait before the first retry; it doubles for each further retry, and a
	// random jitter of up to half of it is subtracted. Default: 25ms.
	Backoff Duration `yaml:"backoff"`
	// MaxBackoff caps the wait between attempts. Default: 250ms.
	MaxBackoff Duration `yaml:"max_backoff"`
	// BudgetPercent caps retries at this percentage (1-100) of the service's requests over
	// budget_window. Default: 20.
	BudgetPercent int `yaml:"budget_percent"`
	// BudgetWindow is the rolling window of the retry budget. Default: 10s.
	BudgetWindow Duration `yaml:"budget_window"`
	// BudgetMinRetries are retries allowed per budget_window whatever the percentage, so a
	// service with little traffic can still retry. Default: 10.
	BudgetMinRetries *int `yaml:"budget_min_retries"`
	// MaxBodyBytes is the largest request body kept in memory so it can be sent again; a request
	// with a larger body is not retried. Default: 64KiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
}

func (c *Config) defaultResilience() {
	for i := range c.Services {
		svc := &c.Services[i]
		if cb := svc.CircuitBreaker; cb != nil {
			if cb.FailureThreshold == 0 && cb.FailurePercent == 0 {
				cb.FailureThreshold = 5
			}
			if cb.MinRequests == 0 {
				cb.MinRequests = 20
			}
			defDur(&cb.Window, 10*time.Second)
			defDur(&cb.RecoveryTimeout, 30*time.Second)
			if cb.HalfOpenRequests == 0 {
				cb.HalfOpenRequests = 1
			}
			if cb.FailureOn == nil {
				cb.FailureOn = append([]string(nil), defaultFailureOn...)
			}
			if fb := cb.Fallback; fb != nil && fb.Service == "" {
				if fb.Status == 0 {
					fb.Status = 200
				}
				if fb.ContentType == "" {
					fb.ContentType = "application/json"
				}
			}
		}
		if hc := svc.HealthCheck; hc != nil {
			if hc.AllUnhealthy == "" {
				hc.AllUnhealthy = "fail"
			}
			if a := hc.Active; a != nil {
				defDur(&a.Interval, 10*time.Second)
				defDur(&a.Timeout, 2*time.Second)
				if a.HealthyThreshold == 0 {
					a.HealthyThreshold = 2
				}
				if a.UnhealthyThreshold == 0 {
					a.UnhealthyThreshold = 3
				}
			}
			if p := hc.Passive; p != nil {
				if p.ConsecutiveFailures == 0 {
					p.ConsecutiveFailures = 5
				}
				if p.FailureOn == nil {
					p.FailureOn = append([]string(nil), defaultFailureOn...)
				}
				defDur(&p.EjectionTime, 30*time.Second)
				defDur(&p.MaxEjectionTime, 5*time.Minute)
			}
		}
		if r := svc.Retries; r != nil {
			if r.Attempts == 0 {
				r.Attempts = 3
			}
			if r.Methods == nil {
				r.Methods = append([]string(nil), defaultRetryMethods...)
			}
			for j, m := range r.Methods {
				r.Methods[j] = strings.ToUpper(m)
			}
			if r.RetryOn == nil {
				r.RetryOn = append([]string(nil), defaultRetryOn...)
			}
			defDur(&r.PerTryTimeout, 0)
			defDur(&r.Backoff, 25*time.Millisecond)
			defDur(&r.MaxBackoff, 250*time.Millisecond)
			if r.BudgetPercent == 0 {
				r.BudgetPercent = 20
			}
			defDur(&r.BudgetWindow, 10*time.Second)
			if r.BudgetMinRetries == nil {
				n := 10
				r.BudgetMinRetries = &n
			}
			defSize(&r.MaxBodyBytes, 64<<10)
		}
	}
}

func (s *Source) validateResilience(add func(path, format string, args ...any)) {
	c := s.Config
	byName := map[string]*Service{}
	for i := range c.Services {
		byName[c.Services[i].Name] = &c.Services[i]
	}
	for i := range c.Services {
		svc := &c.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		if cb := svc.CircuitBreaker; cb != nil {
			bp := p + ".circuit_breaker"
			if cb.FailureThreshold < 0 {
				add(bp+".failure_threshold", "must not be negative")
			}
			if cb.FailurePercent < 0 || cb.FailurePercent > 100 {
				add(bp+".failure_percent", "must be between 0 and 100")
			}
			if cb.MinRequests < 1 {
				add(bp+".min_requests", "must be at least 1")
			}
			if cb.FailurePercent > 0 && cb.Window.Duration < 10*time.Millisecond {
				add(bp+".window", "must be at least 10ms")
			}
			if cb.RecoveryTimeout.Duration <= 0 {
				add(bp+".recovery_timeout", "must be greater than 0")
			}
			if cb.HalfOpenRequests < 1 {
				add(bp+".half_open_requests", "must be at least 1")
			}
			checkConditions(add, bp+".failure_on", cb.FailureOn)
			checkStatuses(add, bp+".failure_statuses", cb.FailureStatuses)
			if fb := cb.Fallback; fb != nil {
				fp := bp + ".fallback"
				switch {
				case fb.Service != "" && (fb.Body != "" || fb.Status != 0 || fb.ContentType != ""):
					add(fp, "give either service or a static response (status, body, content_type), not both")
				case fb.Service != "":
					other, ok := byName[fb.Service]
					switch {
					case !ok:
						add(fp+".service", "unknown service %q", fb.Service)
					case other == svc:
						add(fp+".service", "must be another service")
					case other.CircuitBreaker != nil && other.CircuitBreaker.Fallback != nil && other.CircuitBreaker.Fallback.Service != "":
						add(fp+".service", "service %q has a fallback service itself; fallbacks do not chain", fb.Service)
					}
				default:
					if fb.Status < 200 || fb.Status > 599 {
						add(fp+".status", "must be an HTTP status from 200 to 599")
					}
					if strings.ContainsAny(fb.ContentType, "\r\n") {
						add(fp+".content_type", "must be a single line")
					}
				}
			}
		}
		if hc := svc.HealthCheck; hc != nil {
			hp := p + ".health_check"
			if hc.AllUnhealthy != "fail" && hc.AllUnhealthy != "try_anyway" {
				add(hp+".all_unhealthy", "unknown value %q (want fail or try_anyway)", hc.AllUnhealthy)
			}
			if a := hc.Active; a != nil {
				ap := hp + ".active"
				if !strings.HasPrefix(a.Path, "/") || strings.ContainsAny(a.Path, " \t\r\n#") {
					add(ap+".path", "is required: a path starting with / such as /healthz")
				}
				if a.Interval.Duration < 10*time.Millisecond {
					add(ap+".interval", "must be at least 10ms")
				}
				if a.Timeout.Duration <= 0 {
					add(ap+".timeout", "must be greater than 0 (every backend call has a timeout)")
				}
				if a.HealthyThreshold < 1 {
					add(ap+".healthy_threshold", "must be at least 1")
				}
				if a.UnhealthyThreshold < 1 {
					add(ap+".unhealthy_threshold", "must be at least 1")
				}
				checkStatuses(add, ap+".expected_statuses", a.ExpectedStatuses)
			}
			if ps := hc.Passive; ps != nil {
				pp := hp + ".passive"
				if ps.ConsecutiveFailures < 1 {
					add(pp+".consecutive_failures", "must be at least 1")
				}
				checkConditions(add, pp+".failure_on", ps.FailureOn)
				checkStatuses(add, pp+".failure_statuses", ps.FailureStatuses)
				if ps.EjectionTime.Duration <= 0 {
					add(pp+".ejection_time", "must be greater than 0")
				}
				if ps.MaxEjectionTime.Duration < ps.EjectionTime.Duration {
					add(pp+".max_ejection_time", "must not be shorter than ejection_time")
				}
			}
		}
		if r := svc.Retries; r != nil {
			rp := p + ".retries"
			if r.Attempts < 1 || r.Attempts > 10 {
				add(rp+".attempts", "must be between 1 and 10")
			}
			for j, m := range r.Methods {
				if !validToken(m) {
					add(fmt.Sprintf("%s.methods[%d]", rp, j), "%q is not a valid HTTP method", m)
				}
			}
			checkConditions(add, rp+".retry_on", r.RetryOn)
			checkStatuses(add, rp+".retry_statuses", r.RetryStatuses)
			if r.MaxBackoff.Duration < r.Backoff.Duration {
				add(rp+".max_backoff", "must not be shorter than backoff")
			}
			if r.BudgetPercent < 1 || r.BudgetPercent > 100 {
				add(rp+".budget_percent", "must be between 1 and 100")
			}
			if r.BudgetWindow.Duration < 10*time.Millisecond {
				add(rp+".budget_window", "must be at least 10ms")
			}
			if r.BudgetMinRetries != nil && *r.BudgetMinRetries < 0 {
				add(rp+".budget_min_retries", "must not be negative")
			}
		}
	}
}

func checkConditions(add func(string, string, ...any), path string, conds []string) {
	for j, c := range conds {
		if !contains(failureConditions, c) {
			add(fmt.Sprintf("%s[%d]", path, j), "unknown condition %q (want one of %s)", c, strings.Join(failureConditions, ", "))
		}
	}
}

func checkStatuses(add func(string, string, ...any), path string, statuses []int) {
	for j, st := range statuses {
		if st < 100 || st > 599 {
			add(fmt.Sprintf("%s[%d]", path, j), "%d is not an HTTP status (100-599)", st)
		}
	}
}
