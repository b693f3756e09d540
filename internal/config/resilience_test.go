package config

import (
	"strings"
	"testing"
	"time"
)

const resilienceBase = `version: 1
listeners: [{ name: public, address: ":8080" }]
services:
  - name: spare
    targets: [{ url: "http://10.0.0.9:80" }]
  - name: s
    targets: [{ url: "http://10.0.0.1:80" }]
`

func TestResilienceDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load("gw.yaml", []byte(resilienceBase+`    circuit_breaker: { fallback: { body: "{}" } }
    health_check: { active: { path: /healthz }, passive: {} }
    retries: {}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := cfg.Services[1]
	cb := svc.CircuitBreaker
	if cb.FailureThreshold != 5 || cb.FailurePercent != 0 || cb.MinRequests != 20 || cb.Window.Duration != 10*time.Second ||
		cb.RecoveryTimeout.Duration != 30*time.Second || cb.HalfOpenRequests != 1 || strings.Join(cb.FailureOn, ",") != "connect_error,timeout,reset,5xx" {
		t.Errorf("circuit_breaker defaults: %+v", cb)
	}
	if fb := cb.Fallback; fb.Status != 200 || fb.ContentType != "application/json" {
		t.Errorf("fallback defaults: %+v", fb)
	}
	hc := svc.HealthCheck
	if hc.AllUnhealthy != "fail" || hc.Active.Interval.Duration != 10*time.Second || hc.Active.Timeout.Duration != 2*time.Second ||
		hc.Active.HealthyThreshold != 2 || hc.Active.UnhealthyThreshold != 3 {
		t.Errorf("health_check defaults: %+v %+v", hc, hc.Active)
	}
	if p := hc.Passive; p.ConsecutiveFailures != 5 || p.EjectionTime.Duration != 30*time.Second || p.MaxEjectionTime.Duration != 5*time.Minute {
		t.Errorf("passive defaults: %+v", p)
	}
	r := svc.Retries
	if r.Attempts != 3 || strings.Join(r.Methods, ",") != "GET,HEAD,OPTIONS,PUT,DELETE,TRACE" || r.PerTryTimeout.Duration != 0 ||
		r.Backoff.Duration != 25*time.Millisecond || r.MaxBackoff.Duration != 250*time.Millisecond || r.BudgetPercent != 20 ||
		r.BudgetWindow.Duration != 10*time.Second || *r.BudgetMinRetries != 10 || r.MaxBodyBytes.Bytes != 64<<10 ||
		strings.Join(r.RetryOn, ",") != "connect_error,reset,timeout,gateway_error" {
		t.Errorf("retries defaults: %+v", r)
	}
	// Nothing configured: nothing added.
	if spare := cfg.Services[0]; spare.CircuitBreaker != nil || spare.HealthCheck != nil || spare.Retries != nil {
		t.Errorf("resilience added to a service without it: %+v", spare)
	}

	// failure_percent alone turns the consecutive rule off; explicit zeros are kept.
	cfg, err = Load("gw.yaml", []byte(resilienceBase+`    circuit_breaker: { failure_percent: 40 }
    retries: { methods: [get, post], budget_min_retries: 0, max_body_bytes: 0 }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cb := cfg.Services[1].CircuitBreaker; cb.FailureThreshold != 0 || cb.FailurePercent != 40 {
		t.Errorf("percent-only breaker: %+v", cb)
	}
	if r := cfg.Services[1].Retries; strings.Join(r.Methods, ",") != "GET,POST" || *r.BudgetMinRetries != 0 || r.MaxBodyBytes.Bytes != 0 {
		t.Errorf("explicit retries: %+v", r)
	}
}

func TestResilienceValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"breaker ranges", `    circuit_breaker: { failure_threshold: -1, failure_percent: 101, min_requests: -2, half_open_requests: -1, failure_on: [oops], failure_statuses: [42] }`,
			[]string{"services[1].circuit_breaker.failure_threshold: must not be negative",
				"services[1].circuit_breaker.failure_percent: must be between 0 and 100",
				"services[1].circuit_breaker.min_requests: must be at least 1",
				"services[1].circuit_breaker.half_open_requests: must be at least 1",
				`services[1].circuit_breaker.failure_on[0]: unknown condition "oops"`,
				"services[1].circuit_breaker.failure_statuses[0]: 42 is not an HTTP status"}},
		{"fallback both", `    circuit_breaker: { fallback: { service: spare, body: "{}" } }`,
			[]string{"services[1].circuit_breaker.fallback: give either service or a static response"}},
		{"fallback unknown", `    circuit_breaker: { fallback: { service: nope } }`,
			[]string{`services[1].circuit_breaker.fallback.service: unknown service "nope"`}},
		{"fallback self", `    circuit_breaker: { fallback: { service: s } }`,
			[]string{"services[1].circuit_breaker.fallback.service: must be another service"}},
		{"fallback status", `    circuit_breaker: { fallback: { status: 99, body: x } }`,
			[]string{"services[1].circuit_breaker.fallback.status: must be an HTTP status from 200 to 599"}},
		{"health", `    health_check: { all_unhealthy: maybe, active: { path: healthz, interval: 1ms, healthy_threshold: -1 }, passive: { ejection_time: 10s, max_ejection_time: 1s } }`,
			[]string{`services[1].health_check.all_unhealthy: unknown value "maybe"`,
				"services[1].health_check.active.path: is required",
				"services[1].health_check.active.interval: must be at least 10ms",
				"services[1].health_check.active.healthy_threshold: must be at least 1",
				"services[1].health_check.passive.max_ejection_time: must not be shorter than ejection_time"}},
		{"retries", `    retries: { attempts: 11, methods: ["G T"], retry_on: [5xx, nope], backoff: 1s, max_backoff: 10ms, budget_percent: 200, budget_min_retries: -1 }`,
			[]string{"services[1].retries.attempts: must be between 1 and 10",
				`services[1].retries.methods[0]: "G T" is not a valid HTTP method`,
				`services[1].retries.retry_on[1]: unknown condition "nope"`,
				"services[1].retries.max_backoff: must not be shorter than backoff",
				"services[1].retries.budget_percent: must be between 1 and 100",
				"services[1].retries.budget_min_retries: must not be negative"}},
		{"unknown field", `    retries: { attempt: 3 }`, []string{`unknown field "attempt"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("gw.yaml", []byte(resilienceBase+tc.yaml+"\n"), nil)
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestFallbackServicesDoNotChain(t *testing.T) {
	t.Parallel()
	_, err := Load("gw.yaml", []byte(`version: 1
listeners: [{ name: public, address: ":8080" }]
services:
  - name: a
    targets: [{ url: "http://10.0.0.1:80" }]
    circuit_breaker: { fallback: { service: b } }
  - name: b
    targets: [{ url: "http://10.0.0.2:80" }]
    circuit_breaker: { fallback: { service: a } }
`), nil)
	if err == nil || !strings.Contains(err.Error(), `services[0].circuit_breaker.fallback.service: service "b" has a fallback service itself`) {
		t.Fatalf("chained fallbacks: %v", err)
	}
}
