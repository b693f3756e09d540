package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/middleware/ratelimit"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// adminListener is the running admin API.
type adminListener struct {
	// address is admin.address as it was when the listener was bound: a reload does not
	// rebind it (see adminReloadNotesLocked).
	address string
	ln      net.Listener
	srv     *http.Server
	done    chan struct{}
}

// initObservability sets up what the Runtime and the admin API share: the adjustable log
// level, the metrics registry and the tracer. It runs once, in New; these settings apply at
// start (logging.level also on reload).
func (s *Server) initObservability(cfg *config.Config) error {
	s.level = s.opts.LogLevel
	if s.level == nil {
		s.level = new(slog.LevelVar)
		s.level.Set(lowestEnabled(s.opts.Logger.Handler()))
	}
	s.logger = slog.New(&levelHandler{level: s.level, h: s.opts.Logger.Handler()})
	if cfg.Logging.Level != "" {
		s.setLevel(cfg.Logging.Level)
	}
	if cfg.Metrics.Enabled == nil || *cfg.Metrics.Enabled {
		s.metrics = telemetry.NewMetrics(telemetry.MetricsOptions{GoRuntime: cfg.Metrics.GoRuntime == nil || *cfg.Metrics.GoRuntime})
		s.metrics.SetTargetSource(func() []telemetry.TargetStatus {
			// Scrape time is also when breaker gauges are refreshed (they may lag one scrape:
			// collectors run concurrently).
			s.refreshBreakerGauges()
			return s.current.Load().TargetStatuses()
		})
	}
	tc := cfg.Tracing
	if tc.Enabled {
		ratio := 1.0
		if tc.SampleRatio != nil {
			ratio = *tc.SampleRatio
		}
		t, err := telemetry.NewTracing(telemetry.TracingOptions{
			Endpoint: tc.Endpoint, Headers: tc.Headers, SampleRatio: ratio, ServiceName: tc.ServiceName,
			Timeout: tc.Timeout.Duration, Exporter: s.opts.SpanExporter,
		})
		if err != nil {
			return err
		}
		s.tracing = t
	}
	return nil
}

func (s *Server) setLevel(name string) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(name)); err == nil {
		s.level.Set(l)
	}
}

// applyLogLevel applies logging.level when a reload changed it.
func (s *Server) applyLogLevel(oldCfg, newCfg *config.Config) {
	if newCfg.Logging.Level != "" && newCfg.Logging.Level != oldCfg.Logging.Level {
		s.setLevel(newCfg.Logging.Level)
		s.logger.Info("log level set by config", "level", newCfg.Logging.Level)
	}
}

// LogLevel returns the operational log's level, which the admin API changes.
func (s *Server) LogLevel() *slog.LevelVar { return s.level }

// Metrics returns the metrics registry (nil when metrics.enabled is false).
func (s *Server) Metrics() *telemetry.Metrics { return s.metrics }

// AdminHandler builds the admin API over this server.
func (s *Server) AdminHandler() (*admin.Handler, error) {
	var reload func() error
	if s.opts.ConfigPath != "" {
		reload = s.ReloadFile
	}
	return admin.New(admin.Options{
		// Read per request, so a reload that rotates or removes admin.token applies at once.
		Token:    func() string { return s.current.Load().Config.Admin.Token },
		Runtime:  s.Runtime,
		Draining: s.Draining,
		Reloads: func() []admin.Reload {
			evs := s.Reloads()
			out := make([]admin.Reload, len(evs))
			for i, e := range evs {
				out[i] = admin.Reload{Time: e.Time, OK: e.OK, Error: e.Error}
			}
			return out
		},
		Reload:    reload,
		LookupEnv: s.opts.LookupEnv,
		LogLevel:  s.level,
		Metrics:   s.metrics,
		States:    s.stateSource(),
		Limits:    s.limitInspector(),
		Cache:     s.opts.Cache,
		Logger:    s.logger,
		Version:   s.opts.Version,
	})
}

// startAdminLocked binds the admin listener of cfg, if any.
func (s *Server) startAdminLocked(cfg *config.Config) error {
	a := cfg.Admin
	if a.Address == "" {
		return nil
	}
	if !config.IsLoopbackAddress(a.Address) && a.Token == "" {
		return fmt.Errorf("admin listener: %s is not a loopback address and admin.token is not set; refusing to expose the admin API without a token", a.Address)
	}
	h, err := s.AdminHandler()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.Address)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	al := &adminListener{address: a.Address, ln: ln, srv: srv, done: make(chan struct{})}
	go func() {
		defer close(al.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("admin listener stopped", "error", err.Error())
		}
	}()
	s.admin = al
	s.logger.Info("admin listening", "address", ln.Addr().String(), "token", a.Token != "")
	return nil
}

// adminReloadNotesLocked returns warnings about the admin settings of newCfg, a config being
// applied by a reload, that do not take effect until restart: the admin listener is bound once,
// at Start, so a changed, added or removed admin.address only shows in /api/v1/config. It
// compares with the running listener rather than the previous config, so the warning repeats
// on every reload until a restart applies it. admin.token needs no note (it applies at once),
// except when it is removed while the listener still binds a non-loopback address: the admin
// API then answers only loopback connections. The caller holds s.mu.
func (s *Server) adminReloadNotesLocked(newCfg *config.Config) []string {
	if len(s.listeners) == 0 && s.admin == nil {
		return nil // not started: Start binds what the current config says
	}
	want, al := newCfg.Admin.Address, s.admin
	if al == nil {
		if want != "" {
			return []string{fmt.Sprintf("admin.address %q added: the admin listener starts at restart", want)}
		}
		return nil
	}
	var notes []string
	switch {
	case want == "":
		notes = append(notes, fmt.Sprintf("admin.address removed: applies at restart; the admin API keeps serving on %s", al.ln.Addr()))
	case want != al.address:
		notes = append(notes, fmt.Sprintf("admin.address changed from %q to %q: applies at restart; the admin API keeps serving on %s", al.address, want, al.ln.Addr()))
	}
	if newCfg.Admin.Token == "" && !config.IsLoopbackAddress(al.address) {
		notes = append(notes, fmt.Sprintf("admin.token is not set but the admin listener still binds %s (not loopback) until restart: it answers only loopback connections meanwhile", al.ln.Addr()))
	}
	return notes
}

// AdminAddr returns the bound admin address ("" without an admin listener).
func (s *Server) AdminAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin == nil {
		return ""
	}
	return s.admin.ln.Addr().String()
}

// stopObservability closes the admin listener (after the client listeners drained, so
// readiness reports draining meanwhile) and flushes buffered spans.
func (s *Server) stopObservability(ctx context.Context) {
	s.mu.Lock()
	al := s.admin
	s.admin = nil
	s.mu.Unlock()
	if al != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		if err := al.srv.Shutdown(sctx); err != nil {
			_ = al.srv.Close()
		}
		cancel()
		<-al.done
	}
	if s.tracing != nil {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := s.tracing.Shutdown(tctx); err != nil {
			s.logger.Warn("tracing: flushing spans at shutdown failed", "error", err.Error())
		}
		cancel()
	}
}

// levelHandler filters records below an adjustable level before the wrapped handler sees
// them.
type levelHandler struct {
	level slog.Leveler
	h     slog.Handler
}

func (l *levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.level.Level() && l.h.Enabled(ctx, lv)
}

func (l *levelHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }

func (l *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{level: l.level, h: l.h.WithAttrs(as)}
}

func (l *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{level: l.level, h: l.h.WithGroup(name)}
}

// lowestEnabled is the lowest standard level h logs: the starting point of the adjustable
// level when the caller did not provide one.
func lowestEnabled(h slog.Handler) slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if h.Enabled(context.Background(), l) {
			return l
		}
	}
	return slog.LevelError
}

// stateSource is Options.States, or the upstream registry's breaker and health state.
func (s *Server) stateSource() admin.StateSource {
	if s.opts.States != nil {
		return s.opts.States
	}
	return registryStates{s.registry}
}

// limitInspector is Options.Limits, or the current Runtime's rate limits read without
// counting (see ratelimit.Inspector).
func (s *Server) limitInspector() admin.LimitInspector {
	if s.opts.Limits != nil {
		return s.opts.Limits
	}
	return runtimeLimits{s}
}

// runtimeLimits adapts the current Runtime's rate-limit inspector to the admin API.
type runtimeLimits struct{ s *Server }

func (rl runtimeLimits) LimitState(ctx context.Context, key string) ([]admin.LimitState, error) {
	st, err := rl.s.current.Load().LimitState(ctx, key)
	if errors.Is(err, ratelimit.ErrInvalidKey) {
		return nil, fmt.Errorf("%w: %w", admin.ErrInvalidKey, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]admin.LimitState, len(st))
	for i, l := range st {
		out[i] = admin.LimitState{Limit: l.Limit, Scope: l.Scope, Counter: l.Counter, Store: l.Store,
			Max: l.Max, Burst: l.Burst, Window: l.Window, Tiers: l.Tiers, Remaining: l.Remaining, ResetAfter: l.ResetAfter}
		if l.Err != nil {
			out[i].Error = l.Err.Error()
		}
	}
	return out, nil
}

// registryStates adapts the upstream registry's snapshot to the admin API.
type registryStates struct{ r *upstream.Registry }

func (rs registryStates) Services() []admin.ServiceState {
	snap := rs.r.Snapshot()
	out := make([]admin.ServiceState, 0, len(snap))
	for _, svc := range snap {
		st := admin.ServiceState{Name: svc.Name, Breaker: string(svc.Breaker)}
		for _, t := range svc.Targets {
			ts := admin.TargetState{URL: t.URL, Breaker: string(t.Breaker)}
			switch {
			case !t.EjectedUntil.IsZero() && time.Now().Before(t.EjectedUntil):
				ts.Detail = "ejected by passive health checking until " + t.EjectedUntil.Format(time.RFC3339)
			case !t.ActiveHealthy:
				ts.Detail = "failing its active health check"
			}
			st.Targets = append(st.Targets, ts)
		}
		out = append(out, st)
	}
	return out
}

func (s *Server) refreshBreakerGauges() {
	states := map[telemetry.BreakerKey]telemetry.BreakerState{}
	for _, svc := range s.registry.Snapshot() {
		if svc.Breaker != "" {
			states[telemetry.BreakerKey{Service: svc.Name}] = breakerGauge(svc.Breaker)
		}
		for _, t := range svc.Targets {
			if t.Breaker != "" {
				states[telemetry.BreakerKey{Service: svc.Name, Target: t.URL}] = breakerGauge(t.Breaker)
			}
		}
	}
	s.metrics.ReplaceBreakerStates(states)
}

func breakerGauge(b upstream.BreakerState) telemetry.BreakerState {
	switch b {
	case upstream.BreakerOpen:
		return telemetry.BreakerOpen
	case upstream.BreakerHalfOpen:
		return telemetry.BreakerHalfOpen
	}
	return telemetry.BreakerClosed
}
