package upstream

import (
	"fmt"

	"github.com/gatehouse/gatehouse/internal/config"
)

// ConfigFromService translates a validated, defaulted service config into a ServiceConfig with
// its name, balancer and resilience settings. The caller adds Targets, Transport, Logger and
// resolves Fallback.Service (named by FallbackServiceName).
func ConfigFromService(svc *config.Service) (ServiceConfig, error) {
	sc := ServiceConfig{Name: svc.Name, Balancer: svc.Balancer, RequestTimeout: svc.Timeouts.Request.Duration}
	if cb := svc.CircuitBreaker; cb != nil {
		on, err := ParseConditions(cb.FailureOn, cb.FailureStatuses)
		if err != nil {
			return sc, fmt.Errorf("circuit_breaker: %w", err)
		}
		sc.Breaker = &BreakerConfig{
			FailureThreshold: cb.FailureThreshold, FailurePercent: cb.FailurePercent, MinRequests: cb.MinRequests,
			Window: cb.Window.Duration, RecoveryTimeout: cb.RecoveryTimeout.Duration,
			HalfOpenRequests: cb.HalfOpenRequests, FailureOn: on, PerTarget: cb.PerTarget,
		}
		if fb := cb.Fallback; fb != nil && fb.Service == "" {
			sc.Fallback = &Fallback{Status: fb.Status, Body: fb.Body, ContentType: fb.ContentType}
		}
	}
	if hc := svc.HealthCheck; hc != nil {
		sc.TryAnyway = hc.AllUnhealthy == "try_anyway"
		if a := hc.Active; a != nil {
			sc.Active = &ActiveHealth{
				Path: a.Path, Interval: a.Interval.Duration, Timeout: a.Timeout.Duration,
				HealthyThreshold: a.HealthyThreshold, UnhealthyThreshold: a.UnhealthyThreshold,
				ExpectedStatuses: a.ExpectedStatuses,
			}
		}
		if p := hc.Passive; p != nil {
			on, err := ParseConditions(p.FailureOn, p.FailureStatuses)
			if err != nil {
				return sc, fmt.Errorf("health_check.passive: %w", err)
			}
			sc.Passive = &PassiveHealth{
				ConsecutiveFailures: p.ConsecutiveFailures, FailureOn: on,
				EjectionTime: p.EjectionTime.Duration, MaxEjectionTime: p.MaxEjectionTime.Duration,
			}
		}
	}
	if r := svc.Retries; r != nil {
		on, err := ParseConditions(r.RetryOn, r.RetryStatuses)
		if err != nil {
			return sc, fmt.Errorf("retries: %w", err)
		}
		minRetries := 0
		if r.BudgetMinRetries != nil {
			minRetries = *r.BudgetMinRetries
		}
		sc.Retry = &RetryConfig{
			Attempts: r.Attempts, Methods: r.Methods, RetryOn: on, PerTryTimeout: r.PerTryTimeout.Duration,
			Backoff: r.Backoff.Duration, MaxBackoff: r.MaxBackoff.Duration,
			BudgetPercent: r.BudgetPercent, BudgetMinRetries: minRetries, BudgetWindow: r.BudgetWindow.Duration,
			MaxBodyBytes: r.MaxBodyBytes.Bytes,
		}
	}
	return sc, nil
}

// FallbackServiceName returns the service a circuit breaker falls back to, or "".
func FallbackServiceName(svc *config.Service) string {
	if cb := svc.CircuitBreaker; cb != nil && cb.Fallback != nil {
		return cb.Fallback.Service
	}
	return ""
}
