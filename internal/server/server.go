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
	"net/textproto"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware/cache"
	"github.com/gatehouse/gatehouse/internal/middleware/edge"
	"github.com/gatehouse/gatehouse/internal/runtime"
	"github.com/gatehouse/gatehouse/internal/server/h1"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
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
	// certHeaders are the client-certificate subject headers of the current config's mTLS
	// listeners, stripped from requests on every listener (see listenerHandler).
	certHeaders atomic.Pointer[[]string]

	mu        sync.Mutex // serializes reloads and shutdown
	listeners []*listener
	accessW   *telemetry.BufferedWriter
	accessF   *os.File
	access    *telemetry.AccessLogger
	reloads   []ReloadEvent

	releaseHub func()
	// guard sheds load and refuses long URIs in front of every runtime; its in-flight count
	// spans reloads.
	guard edge.Guard

	level   *slog.LevelVar
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	admin   *adminListener
}

type listener struct {
	name    string
	cfg     config.Listener
	ln      net.Listener
	sock    *socket // the bound socket ln accepts from, handed on to a changed listener
	srv     httpServer
	done    chan struct{}
	closers []io.Closer // TLS certificate watchers
}

// httpServer is what serves a listener: net/http's server (TLS, h2c) or Gatehouse's own
// HTTP/1.x server (plain listeners).
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
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
	if s.opts.Cache == nil {
		// The admin API purges every route's cache through the process's cache hub.
		hub, release, err := cache.AcquireHub(s.registry.Resources)
		if err != nil {
			return nil, err
		}
		s.opts.Cache, s.releaseHub = hub, release
	}
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
	s.certHeaders.Store(subjectHeaders(cfg))
	s.metrics.SetActiveConfig(rt.CompiledAt)
	s.guard.Logger = s.logger
	s.guard.Refuse = s.refuseGuarded
	s.guard.Configure(cfg.Server.MaxInFlight, cfg.Server.MaxURIBytes.Bytes)
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
		l, err := s.bindLocked(lc, cfg, nil)
		if err != nil {
			s.closeListenersLocked()
			return err
		}
		s.serveLocked(l)
	}
	if err := s.startAdminLocked(cfg); err != nil {
		s.closeListenersLocked()
		return err
	}
	return nil
}

// bindLocked binds lc's address (or, given the socket of a listener it replaces at the same
// address, takes that over) and builds the server for it without serving yet, so a reload can
// bind every listener it needs before it commits to any.
func (s *Server) bindLocked(lc config.Listener, cfg *config.Config, sock *socket) (*listener, error) {
	l := &listener{name: lc.Name, cfg: lc, done: make(chan struct{})}
	// Certificates load before the socket is bound: a listener that cannot start then never
	// holds its address, not even briefly.
	var mgr *tlsconf.Manager
	if lc.TLS != nil {
		m, err := tlsconf.New(*lc.TLS, s.logger)
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", lc.Name, err)
		}
		mgr = m
		l.closers = append(l.closers, mgr)
	}
	if sock == nil {
		var err error
		if sock, err = listenSocket(lc.Address); err != nil {
			l.closeResources()
			return nil, bindError(lc, err)
		}
	}
	l.sock = sock
	var ln net.Listener = sock.view()
	// Connection caps first, so a refused connection costs nothing more.
	ln = edge.LimitListener(ln, lc.MaxConns, lc.MaxConnsPerIP, s.logger)
	sc := cfg.Server
	handler := s.listenerHandler(lc, cfg)
	// The handler answers oversized heads with a JSON 431; this hard cap is the backstop.
	maxHead := int(sc.MaxHeaderBytes.Bytes)*2 + 4096
	var srv httpServer
	if lc.TLS == nil && !lc.H2C {
		// Plain HTTP/1.x: Gatehouse's own server (one goroutine per connection, strict framing
		// that refuses smuggling attempts itself).
		srv = &h1.Server{
			Handler:           handler,
			ReadHeaderTimeout: sc.ReadHeaderTimeout.Duration,
			ReadTimeout:       sc.ReadTimeout.Duration,
			WriteTimeout:      sc.WriteTimeout.Duration,
			IdleTimeout:       sc.IdleTimeout.Duration,
			MaxHeaderBytes:    maxHead,
			Refuse:            s.refuseRequest,
			Logger:            s.logger,
		}
	} else {
		hs := &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: sc.ReadHeaderTimeout.Duration,
			ReadTimeout:       sc.ReadTimeout.Duration,
			WriteTimeout:      sc.WriteTimeout.Duration,
			IdleTimeout:       sc.IdleTimeout.Duration,
			MaxHeaderBytes:    maxHead,
			ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
			ConnContext:       withFraming,
		}
		var protocols http.Protocols
		protocols.SetHTTP1(true)
		if mgr != nil {
			protocols.SetHTTP2(true)
			// The listener terminates TLS with its own config; net/http keeps (and mutates
			// while setting up HTTP/2) a separate hs.TLSConfig, so the two never race.
			ln = newTLSSplitListener(ln, mgr.TLSConfig(), sc.ReadHeaderTimeout.Duration, maxHead)
		} else {
			// h2c: every HTTP/1 request head is checked for ambiguous framing before net/http
			// parses it (net/http would silently prefer Transfer-Encoding).
			ln = newFramingListener(ln, maxHead)
			protocols.SetUnencryptedHTTP2(true)
		}
		hs.Protocols = &protocols
		srv = newStdServer(hs)
	}
	l.ln, l.srv = ln, srv
	return l, nil
}

// bindError names the listener and the address it could not bind, with the system's reason
// ("address already in use") rather than the whole syscall chain.
func bindError(lc config.Listener, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("listener %s: cannot bind %s: %w", lc.Name, lc.Address, errno)
	}
	return fmt.Errorf("listener %s: %w", lc.Name, err)
}

// serveLocked adds a bound listener to the server and serves it in the background.
func (s *Server) serveLocked(l *listener) {
	s.listeners = append(s.listeners, l)
	go func() {
		defer close(l.done)
		// net.ErrClosed: stdServer.Shutdown closes (or drains) its listener before net/http's
		// Shutdown runs, so Serve sees the listener closed.
		if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.logger.Error("listener stopped", "listener", l.name, "error", err.Error())
		}
	}()
	s.logger.Info("listening", "listener", l.name, "address", l.ln.Addr().String(), "tls", l.cfg.TLS != nil, "h2c", l.cfg.H2C)
}

// discard closes a bound listener that never served (a reload that failed part-way).
func (l *listener) discard() {
	_ = l.ln.Close()
	l.closeResources()
}

// subjectHeaders returns the client-certificate subject headers of cfg's mTLS listeners.
func subjectHeaders(cfg *config.Config) *[]string {
	var hs []string
	for _, l := range cfg.Listeners {
		if l.TLS != nil && l.TLS.ClientAuth != nil && *l.TLS.ClientAuth.SubjectHeader != "" {
			hs = append(hs, textproto.CanonicalMIMEHeaderKey(*l.TLS.ClientAuth.SubjectHeader))
		}
	}
	return &hs
}

// listenerHandler is what one listener serves: refusals of smuggling attempts, the HTTPS
// redirect, the verified client-certificate subject, then the guard and the current runtime.
func (s *Server) listenerHandler(lc config.Listener, cfg *config.Config) http.Handler {
	subject := ""
	if lc.TLS != nil && lc.TLS.ClientAuth != nil && *lc.TLS.ClientAuth.SubjectHeader != "" {
		subject = textproto.CanonicalMIMEHeaderKey(*lc.TLS.ClientAuth.SubjectHeader)
	}
	next := s.guard.Wrap(s)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			// HTTP/1.1 over TLS reaches net/http through the framing guard as a plain
			// connection; the request still arrived over TLS.
			r.TLS = connTLS(r)
		}
		if reason, ok := refusedFraming(r); ok {
			s.refuseSmuggling(w, r, reason)
			return
		}
		if lc.RedirectHTTPS {
			s.redirectHTTPS(w, r, lc.HTTPSPort)
			return
		}
		// Subject headers of every mTLS listener of the current config are stripped on all
		// listeners: a client must not be able to claim a certificate identity by sending the
		// header through another door, and a listener a reload kept must strip the headers
		// the reload added.
		if hs := s.certHeaders.Load(); hs != nil {
			for _, h := range *hs {
				delete(r.Header, h)
				if r.Trailer != nil {
					delete(r.Trailer, h) // a declared trailer would reach the upstream too
				}
			}
		}
		if subject != "" && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			r.Header[subject] = []string{r.TLS.PeerCertificates[0].Subject.String()}
		}
		next.ServeHTTP(w, r)
	})
}

// refuseRequest answers a request the HTTP/1.x server refused before routing (malformed or
// ambiguous framing, oversized head) with the gateway's JSON error and a request ID.
func (s *Server) refuseRequest(w http.ResponseWriter, r *http.Request, e *h1.RequestError) {
	if e.Smuggling {
		s.refuseSmuggling(w, r, e.Reason)
		return
	}
	id := httpx.RequestID(nil)
	s.logger.Debug("refused request", "status", e.Status, "reason", e.Reason, "request_id", id,
		"client_ip", httpx.PeerAddr(r.RemoteAddr).String())
	s.refuse(w, r, id, e.Status, e.Code, e.Reason)
}

func (s *Server) refuseSmuggling(w http.ResponseWriter, r *http.Request, reason string) {
	id := httpx.RequestID(nil)
	s.logger.Warn("security event", "event", "request_smuggling", "reason", reason,
		"request_id", id, "client_ip", httpx.PeerAddr(r.RemoteAddr).String())
	w.Header().Set("Connection", "close")
	s.refuse(w, r, id, http.StatusBadRequest, "request_smuggling", "the request's framing is ambiguous ("+reason+")")
}

// refuseGuarded answers a request the guard refused (load shed, URI too long); it keeps the
// client's valid request ID, as the runtime does.
func (s *Server) refuseGuarded(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.refuse(w, r, httpx.RequestID(r.Header), status, code, msg)
}

// refuse answers a request refused before the runtime with the gateway's JSON error under
// request ID id, and has the current runtime log and count it like any other answer.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, id string, status int, code, msg string) {
	s.answerOutside(w, r, id, func(w http.ResponseWriter, r *http.Request) { httpx.WriteError(w, r, status, code, msg) })
}

// redirectHTTPS answers with a permanent redirect to the same URL over https, logged and
// counted like any other answer.
func (s *Server) redirectHTTPS(w http.ResponseWriter, r *http.Request, port int) {
	s.answerOutside(w, r, httpx.RequestID(r.Header), func(w http.ResponseWriter, r *http.Request) { writeHTTPSRedirect(w, r, port) })
}

// answerOutside has write answer r before the runtime, under request ID id, with the server's
// security headers, and has the current runtime log and count the answer.
func (s *Server) answerOutside(w http.ResponseWriter, r *http.Request, id string, write func(http.ResponseWriter, *http.Request)) {
	start := time.Now()
	rt := s.current.Load()
	info := &httpx.Info{RequestID: id}
	r = r.WithContext(httpx.WithInfo(r.Context(), info))
	w.Header().Set("X-Request-Id", id)
	rt.SecurityHeaders(w.Header(), r.TLS != nil) // listenerHandler has set r.TLS from the connection
	sw := &httpx.StatusWriter{ResponseWriter: w}
	write(sw, r)
	rt.LogRefusal(r, info, sw, start)
}

func writeHTTPSRedirect(w http.ResponseWriter, r *http.Request, port int) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6 literal
	}
	if port != 443 {
		host += ":" + strconv.Itoa(port)
	}
	uri := r.RequestURI
	if !strings.HasPrefix(uri, "/") {
		uri = "/"
	}
	http.Redirect(w, r, "https://"+host+uri, http.StatusPermanentRedirect)
}

func (s *Server) closeListenersLocked() {
	for _, l := range s.listeners {
		_ = l.srv.Close()
		l.closeResources()
	}
	s.listeners = nil
}

func (l *listener) closeResources() {
	for _, c := range l.closers {
		_ = c.Close()
	}
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

// Reload compiles cfg, binds the listeners it adds or changes, and swaps it in. On any error
// the current Runtime and listeners keep serving.
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
	change, err := s.bindListenersLocked(cfg)
	if err != nil {
		rt.Close()
		s.recordReloadLocked(err)
		s.logger.Error("config rejected; the previous config keeps serving", "error", err.Error())
		return err
	}
	old := s.current.Swap(rt)
	s.certHeaders.Store(subjectHeaders(cfg))
	s.guard.Configure(cfg.Server.MaxInFlight, cfg.Server.MaxURIBytes.Bytes)
	s.switchListenersLocked(change, old.Config, cfg)
	old.Retire()
	s.applyLogLevel(old.Config, cfg)
	for _, n := range s.adminReloadNotesLocked(cfg) {
		s.logger.Warn(n)
	}
	s.recordReloadLocked(nil)
	s.logger.Info("config reloaded", "routes", len(cfg.Routes), "services", len(cfg.Services))
	return nil
}

// listenerChange is what a reload does to the listeners: the unchanged ones keep serving, the
// added and changed ones (already bound) start, and the removed and replaced ones drain.
type listenerChange struct {
	keep, start, drop []*listener
}

// bindListenersLocked binds every listener newCfg adds or changes, before anything is switched:
// a reload is all-or-nothing, so if one address cannot be bound, what this attempt bound is
// closed and the serving listeners are left untouched.
func (s *Server) bindListenersLocked(newCfg *config.Config) (listenerChange, error) {
	var change listenerChange
	if len(s.listeners) == 0 {
		return change, nil // not started (tests that drive ServeHTTP directly)
	}
	want := map[string]config.Listener{}
	for _, lc := range newCfg.Listeners {
		want[socketKey(lc.Address)] = lc
	}
	held := map[string]*socket{} // sockets of the serving listeners, by socketKey
	kept := map[string]bool{}
	for _, l := range s.listeners {
		key := socketKey(l.cfg.Address)
		held[key] = l.sock
		if lc, ok := want[key]; ok && reflect.DeepEqual(lc, l.cfg) {
			change.keep = append(change.keep, l)
			kept[key] = true
			continue
		}
		change.drop = append(change.drop, l)
	}
	// A changed listener at an address already served takes over its socket, however the
	// address is spelled: nothing is rebound, so no queued connection is reset. New addresses
	// are bound.
	for _, rebind := range []bool{false, true} {
		for _, lc := range newCfg.Listeners {
			key := socketKey(lc.Address)
			sock := held[key]
			if kept[key] || (sock != nil) != rebind {
				continue
			}
			l, err := s.bindLocked(lc, newCfg, sock)
			if err != nil {
				for _, b := range change.start {
					b.discard()
				}
				return listenerChange{}, err
			}
			change.start = append(change.start, l)
		}
	}
	return change, nil
}

// switchListenersLocked serves the listeners bindListenersLocked bound and drains the ones they
// replace; the new Runtime is already current, so no request reaches a new listener before it.
// Connection settings (server.* timeouts) of a listener that stays are applied on restart only.
func (s *Server) switchListenersLocked(change listenerChange, oldCfg, newCfg *config.Config) {
	if len(s.listeners) == 0 {
		return
	}
	if !reflect.DeepEqual(connSettings(oldCfg.Server), connSettings(newCfg.Server)) {
		s.logger.Warn("server connection settings changed; they apply to listeners started from now on (restart to apply to existing ones)")
	}
	s.listeners = change.keep
	for _, l := range change.start {
		s.serveLocked(l)
	}
	for _, l := range change.drop {
		go func(l *listener) {
			ctx, cancel := context.WithTimeout(context.Background(), newCfg.Server.ShutdownTimeout.Duration)
			defer cancel()
			_ = l.srv.Shutdown(ctx)
			l.closeResources()
		}(l)
		s.logger.Info("listener drained after a config change", "listener", l.name)
	}
}

func connSettings(sc config.Server) []any {
	return []any{sc.ReadHeaderTimeout, sc.ReadTimeout, sc.WriteTimeout, sc.IdleTimeout, sc.MaxHeaderBytes}
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
			l.closeResources()
		}()
	}
	wg.Wait()
	s.stopObservability(ctx)
	s.current.Load().Close()
	if s.releaseHub != nil {
		s.releaseHub()
	}
	s.closeAccessLog()
	return errors.Join(errs...)
}
