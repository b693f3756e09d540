// Package server runs Gatehouse: it binds the listeners, serves every request through the
// current Runtime, swaps in a new Runtime on reload (an invalid config is rejected whole and the
// old Runtime keeps serving), and drains in-flight requests on shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/runtime"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/upstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Options configures a Server.
type Options struct {
	// ConfigPath is the file Reload reads ("" when the config is given in memory only).
	ConfigPath string
	// Logger receives operational logs. Default: slog.Default().
	Logger *slog.Logger
	// AccessLogWriter overrides server.access_log.output (tests use it).
	AccessLogWriter io.Writer
	// LookupEnv resolves ${NAME} references in the config. Default: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// LogLevel, when set, is the level Logger's handler was built with; logging.level and the
	// admin API change it. Default: a level of the server's own, filtering in front of Logger.
	LogLevel *slog.LevelVar
	// SpanExporter replaces the OTLP exporter when tracing is enabled (tests).
	SpanExporter sdktrace.SpanExporter
	// Version is shown by the admin API.
	Version string
	// States, Limits and Cache feed the admin API's services, rate-limit and cache endpoints.
	States admin.StateSource
	Limits admin.LimitInspector
	Cache  admin.CachePurger
}

// Server is a running gateway.
type Server struct {
	opts     Options
	logger   *slog.Logger
	registry *upstream.Registry
	current  atomic.Pointer[runtime.Runtime]
	draining atomic.Bool

	mu        sync.Mutex // serializes reloads and shutdown
	listeners []*listener
	accessW   *telemetry.BufferedWriter
	accessF   *os.File
	access    *telemetry.AccessLogger
	reloads   []ReloadEvent

	level   *slog.LevelVar
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	admin   *adminListener
}

type listener struct {
	name string
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// ReloadEvent records one reload attempt.
type ReloadEvent struct {
	Time  time.Time
	OK    bool
	Error string
}

// New compiles cfg (already validated) into the first Runtime. Call Start to listen.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	s := &Server{opts: opts, logger: opts.Logger, registry: upstream.NewRegistry()}
	if err := s.initObservability(cfg); err != nil {
		return nil, err
	}
	if err := s.openAccessLog(cfg); err != nil {
		_ = s.tracing.Shutdown(context.Background())
		return nil, err
	}
	rt, err := runtime.Compile(cfg, s.deps())
	if err != nil {
		s.closeAccessLog()
		_ = s.tracing.Shutdown(context.Background())
		return nil, err
	}
	s.current.Store(rt)
	s.metrics.SetActiveConfig(rt.CompiledAt)
	return s, nil
}

func (s *Server) deps() runtime.Deps {
	return runtime.Deps{Registry: s.registry, Logger: s.logger, AccessLog: s.access, Metrics: s.metrics, Tracing: s.tracing}
}

func (s *Server) openAccessLog(cfg *config.Config) error {
	al := cfg.Server.AccessLog
	if al.Enabled == nil || !*al.Enabled {
		return nil
	}
	var w io.Writer
	switch {
	case s.opts.AccessLogWriter != nil:
		w = s.opts.AccessLogWriter
	case al.Output == "stdout":
		w = os.Stdout
	case al.Output == "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(al.Output, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		s.accessF, w = f, f
	}
	size := 0
	if al.BufferSize != nil {
		size = int(al.BufferSize.Bytes)
	}
	s.accessW = telemetry.NewBufferedWriter(w, size, time.Second)
	s.access = telemetry.NewAccessLogger(s.accessW, al.Format)
	return nil
}

func (s *Server) closeAccessLog() {
	if s.accessW != nil {
		_ = s.accessW.Close()
	}
	if s.accessF != nil {
		_ = s.accessF.Close()
	}
}

// ServeHTTP serves one request with the current Runtime.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.current.Load().ServeHTTP(w, r)
}

// Runtime returns the Runtime serving now.
func (s *Server) Runtime() *runtime.Runtime { return s.current.Load() }

// Registry returns the shared upstream resources (for tests and the admin API).
func (s *Server) Registry() *upstream.Registry { return s.registry }

// Start binds every listener of the current config and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.current.Load().Config
	for _, lc := range cfg.Listeners {
		ln, err := net.Listen("tcp", lc.Address)
		if err != nil {
			s.closeListenersLocked()
			return fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		s.serveLocked(lc.Name, ln, cfg)
	}
	if err := s.startAdminLocked(cfg); err != nil {
		s.closeListenersLocked()
		return err
	}
	return nil
}

func (s *Server) serveLocked(name string, ln net.Listener, cfg *config.Config) {
	sc := cfg.Server
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: sc.ReadHeaderTimeout.Duration,
		ReadTimeout:       sc.ReadTimeout.Duration,
		WriteTimeout:      sc.WriteTimeout.Duration,
		IdleTimeout:       sc.IdleTimeout.Duration,
		// The handler answers oversized heads with a JSON 431; this hard cap is the backstop.
		MaxHeaderBytes: int(sc.MaxHeaderBytes.Bytes)*2 + 4096,
		ErrorLog:       slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	l := &listener{name: name, ln: ln, srv: srv, done: make(chan struct{})}
	s.listeners = append(s.listeners, l)
	go func() {
		defer close(l.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("listener stopped", "listener", name, "error", err.Error())
		}
	}()
	s.logger.Info("listening", "listener", name, "address", ln.Addr().String())
}

func (s *Server) closeListenersLocked() {
	for _, l := range s.listeners {
		_ = l.srv.Close()
	}
	s.listeners = nil
}

// Addrs returns the bound listener addresses by listener name (useful with ":0").
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, l := range s.listeners {
		out[l.name] = l.ln.Addr().String()
	}
	return out
}

// ReloadFile re-reads the config file and applies it.
func (s *Server) ReloadFile() error {
	if s.opts.ConfigPath == "" {
		return errors.New("reload: no config file")
	}
	data, err := os.ReadFile(s.opts.ConfigPath)
	if err != nil {
		s.recordReload(fmt.Errorf("read config: %w", err))
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := config.Load(s.opts.ConfigPath, data, s.opts.LookupEnv)
	if err != nil {
		s.recordReload(err)
		s.logger.Error("config rejected; the previous config keeps serving", "error", err.Error())
		return err
	}
	return s.Reload(cfg)
}

// Reload compiles cfg and swaps it in. On any error the current Runtime keeps serving.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return errors.New("reload: server is shutting down")
	}
	rt, err := runtime.Compile(cfg, s.deps())
	if err != nil {
		s.recordReloadLocked(err)
		s.logger.Error("config rejected; the previous config keeps serving", "error", err.Error())
		return err
	}
	old := s.current.Swap(rt)
	if err := s.reconcileListenersLocked(old.Config, cfg); err != nil {
		s.logger.Error("listener update failed", "error", err.Error())
	}
	old.Retire()
	s.applyLogLevel(old.Config, cfg)
	s.recordReloadLocked(nil)
	s.logger.Info("config reloaded", "routes", len(cfg.Routes), "services", len(cfg.Services))
	return nil
}

// reconcileListenersLocked starts listeners added by a reload and drains removed ones.
// Connection settings (server.* timeouts) of a listener that stays are applied on restart only.
func (s *Server) reconcileListenersLocked(oldCfg, newCfg *config.Config) error {
	if len(s.listeners) == 0 {
		return nil // not started (tests that drive ServeHTTP directly)
	}
	if !reflect.DeepEqual(connSettings(oldCfg.Server), connSettings(newCfg.Server)) {
		s.logger.Warn("server connection settings changed; they apply to listeners started from now on (restart to apply to existing ones)")
	}
	want := map[string]string{}
	for _, l := range newCfg.Listeners {
		want[l.Address] = l.Name
	}
	var keep []*listener
	have := map[string]bool{}
	var errs []error
	for _, l := range s.listeners {
		addr := addressOf(oldCfg, l.name)
		if _, ok := want[addr]; ok {
			keep = append(keep, l)
			have[addr] = true
			continue
		}
		go func(l *listener) {
			ctx, cancel := context.WithTimeout(context.Background(), newCfg.Server.ShutdownTimeout.Duration)
			defer cancel()
			_ = l.srv.Shutdown(ctx)
		}(l)
		s.logger.Info("listener removed", "listener", l.name)
	}
	s.listeners = keep
	for _, lc := range newCfg.Listeners {
		if have[lc.Address] {
			continue
		}
		ln, err := net.Listen("tcp", lc.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("listener %s: %w", lc.Name, err))
			continue
		}
		s.serveLocked(lc.Name, ln, newCfg)
	}
	return errors.Join(errs...)
}

func connSettings(sc config.Server) []any {
	return []any{sc.ReadHeaderTimeout, sc.ReadTimeout, sc.WriteTimeout, sc.IdleTimeout, sc.MaxHeaderBytes}
}

func addressOf(cfg *config.Config, name string) string {
	for _, l := range cfg.Listeners {
		if l.Name == name {
			return l.Address
		}
	}
	return ""
}

func (s *Server) recordReload(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordReloadLocked(err)
}

func (s *Server) recordReloadLocked(err error) {
	ev := ReloadEvent{Time: time.Now(), OK: err == nil}
	if err != nil {
		ev.Error = err.Error()
	}
	s.metrics.ConfigReload(err == nil, s.current.Load().CompiledAt)
	s.reloads = append(s.reloads, ev)
	if len(s.reloads) > 50 {
		s.reloads = s.reloads[len(s.reloads)-50:]
	}
}

// Reloads returns the recent reload attempts, oldest first.
func (s *Server) Reloads() []ReloadEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ReloadEvent(nil), s.reloads...)
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Shutdown stops accepting connections and waits for in-flight requests up to the configured
// shutdown_timeout (or ctx), then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	listeners := s.listeners
	s.listeners = nil
	timeout := s.current.Load().Config.Server.ShutdownTimeout.Duration
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(listeners))
	for i, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.srv.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("listener %s: %w", l.name, err)
				_ = l.srv.Close()
			}
			<-l.done
		}()
	}
	wg.Wait()
	s.stopObservability(ctx)
	s.current.Load().Close()
	s.closeAccessLog()
	return errors.Join(errs...)
}
