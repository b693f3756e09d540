// Package admin serves the gateway's admin API and live dashboard on their own listener:
// liveness and readiness, Prometheus metrics, the active config (secrets redacted), the
// compiled route table, services with target health, reload and validation, the log level,
// and hooks into rate limiting and caching. Every answer is JSON, errors included
// ({"error": "<code>", "message": "..."}).
//
// The listener binds to loopback by default. With a token configured every endpoint except
// /healthz, /readyz and the dashboard's static files requires `Authorization: Bearer <token>`;
// without one, requests must arrive on a loopback connection and name a loopback host (a
// DNS-rebinding guard). Requests that change state must not come from another origin. The
// token is the current config's, read on every request, so a reload that rotates or removes it
// applies at once.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/runtime"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Error codes of the admin API.
const (
	CodeUnauthorized   = "unauthorized"
	CodeForbidden      = "forbidden"
	CodeNotFound       = "not_found"
	CodeMethod         = "method_not_allowed"
	CodeBadRequest     = "bad_request"
	CodeInvalidConfig  = "invalid_config"
	CodeNoConfigFile   = "no_config_file"
	CodeReloadFailed   = "reload_failed"
	CodeNotImplemented = "not_implemented"
	CodeDraining       = "draining"
	CodeInternal       = "internal_error"
)

// MaxConfigBytes bounds a config posted for validation.
const MaxConfigBytes = 4 << 20

//go:embed static
var staticFiles embed.FS

// Reload is one reload attempt as the admin API shows it.
type Reload struct {
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}

// Options wires the admin API to the gateway. Runtime is required; every other field is
// optional and its endpoint degrades clearly without it.
type Options struct {
	// Token returns the bearer token required now on every endpoint but health and static
	// files; "" (or a nil Token) means none. It is called on every request so that a reload
	// rotating admin.token takes effect at once: a token fixed at start would keep a revoked
	// one valid until restart.
	Token func() string
	// Runtime returns the Runtime serving now.
	Runtime func() *runtime.Runtime
	// Draining reports whether the gateway is shutting down (readiness fails).
	Draining func() bool
	// Reloads returns the recent reload attempts, oldest first.
	Reloads func() []Reload
	// Reload re-reads the config file and applies it; nil when there is no config file.
	Reload func() error
	// LookupEnv resolves ${NAME} in configs posted for validation.
	LookupEnv func(string) (string, bool)
	// LogLevel is the operational log's level, read and changed by /api/v1/log-level.
	LogLevel *slog.LevelVar
	// Metrics backs /metrics and the dashboard's live figures.
	Metrics *telemetry.Metrics
	// States adds circuit breaker and health detail to /api/v1/services.
	States StateSource
	// Limits backs /api/v1/ratelimit.
	Limits LimitInspector
	// Cache backs /api/v1/cache/purge.
	Cache CachePurger
	// Logger receives the admin actions (reloads, level changes).
	Logger *slog.Logger
	// Version is shown by /api/v1/stats.
	Version string
}

// Handler is the admin API. Build it with New.
type Handler struct {
	o       Options
	routes  map[string]map[string]http.HandlerFunc
	static  http.Handler
	index   []byte
	started time.Time
}

// New builds the admin API handler.
func New(o Options) (*Handler, error) {
	if o.Runtime == nil {
		return nil, errors.New("admin: Runtime is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Draining == nil {
		o.Draining = func() bool { return false }
	}
	if o.Reloads == nil {
		o.Reloads = func() []Reload { return nil }
	}
	if o.Token == nil {
		o.Token = func() string { return "" }
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	h := &Handler{o: o, static: http.StripPrefix("/ui/", http.FileServerFS(sub)), index: index, started: time.Now()}
	h.routes = map[string]map[string]http.HandlerFunc{
		"/metrics":                {"GET": h.metrics},
		"/api/v1/config":          {"GET": h.getConfig},
		"/api/v1/config/validate": {"POST": h.validate},
		"/api/v1/routes":          {"GET": h.getRoutes},
		"/api/v1/services":        {"GET": h.getServices},
		"/api/v1/reload":          {"POST": h.reload},
		"/api/v1/reloads":         {"GET": h.getReloads},
		"/api/v1/log-level":       {"GET": h.getLogLevel, "PUT": h.setLogLevel},
		"/api/v1/stats":           {"GET": h.stats},
		"/api/v1/ratelimit":       {"GET": h.rateLimit},
		"/api/v1/cache/purge":     {"POST": h.purge},
		"/api/v1/":                {"GET": h.endpoints},
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	path := r.URL.Path
	switch {
	case path == "/healthz":
		h.healthz(w, r)
		return
	case path == "/readyz":
		h.readyz(w, r)
		return
	case path == "/" || path == "/dashboard":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, CodeMethod, "use GET")
			return
		}
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		_, _ = w.Write(h.index)
		return
	case strings.HasPrefix(path, "/ui/"):
		hd.Set("Content-Security-Policy", "default-src 'self'")
		h.static.ServeHTTP(w, r)
		return
	}
	methods, ok := h.routes[path]
	if !ok {
		writeError(w, http.StatusNotFound, CodeNotFound, "no admin endpoint "+path+" (GET /api/v1/ lists them)")
		return
	}
	// One read serves both checks, so a reload landing between them cannot pair the bearer
	// check of one token with the no-token rule of another.
	token := h.o.Token()
	if !authorized(r, token) {
		hd.Set("WWW-Authenticate", `Bearer realm="gatehouse-admin"`)
		writeError(w, http.StatusUnauthorized, CodeUnauthorized, "a valid admin token is required: Authorization: Bearer <token>")
		return
	}
	if token == "" && (!loopbackHost(r.Host) || !loopbackConn(r)) {
		writeError(w, http.StatusForbidden, CodeForbidden, "without an admin token the admin API answers only requests to a loopback host (localhost, 127.0.0.1, [::1]) on a loopback connection")
		return
	}
	fn, ok := methods[r.Method]
	if !ok && r.Method == http.MethodHead {
		fn, ok = methods[http.MethodGet]
	}
	if !ok {
		allow := make([]string, 0, len(methods))
		for m := range methods {
			allow = append(allow, m)
		}
		sort.Strings(allow)
		hd.Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, CodeMethod, "use "+strings.Join(allow, " or ")+" on "+path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		writeError(w, http.StatusForbidden, CodeForbidden, "cross-origin requests may not change the gateway")
		return
	}
	fn(w, r)
}

// authorized reports whether r carries token as its bearer token (always, when token is "").
func authorized(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	// Comparing fixed-size digests keeps the comparison constant-time whatever the lengths.
	// Hashing the token per request (rather than once at start) is what lets it change.
	want := sha256.Sum256([]byte(token))
	got := sha256.Sum256([]byte(strings.TrimSpace(auth[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// loopbackConn reports whether r arrived on a connection to a loopback address. The Host
// check alone only keeps browsers out (anyone else can send Host: localhost); this one keeps
// the network out when a reload removed the token of a listener still bound to a
// non-loopback address until restart. A request served without a net/http connection (no
// local address) is refused: it cannot show it is local.
func loopbackConn(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && a != nil && config.IsLoopbackAddress(a.String())
}

// loopbackHost reports whether a Host header names the local machine.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// sameOrigin rejects browser requests sent from another site (CSRF): a request that carries
// an Origin (or, failing that, a Referer) must name this host.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = r.Header.Get("Referer")
	}
	if origin == "" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin" || r.Header.Get("Sec-Fetch-Site") == "none"
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// apiError is the body of every admin error.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	// Errors lists config problems (invalid_config).
	Errors []configError `json:"errors,omitempty"`
}

type configError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Text is the whole error as `gatehouse validate` prints it.
	Text string `json:"text"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal_error","message":"could not encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: code, Message: msg})
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.o.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining", "error": CodeDraining, "message": "the gateway is shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) {
	if h.o.Metrics == nil {
		writeError(w, http.StatusNotFound, CodeNotFound, "metrics are disabled (metrics.enabled: false)")
		return
	}
	h.o.Metrics.Handler().ServeHTTP(w, r)
}

func (h *Handler) endpoints(w http.ResponseWriter, r *http.Request) {
	var list []string
	for p, ms := range h.routes {
		for m := range ms {
			list = append(list, m+" "+p)
		}
	}
	list = append(list, "GET /healthz", "GET /readyz", "GET / (dashboard)")
	sort.Strings(list)
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": list})
}

func (h *Handler) getConfig(w http.ResponseWriter, r *http.Request) {
	rt := h.o.Runtime()
	writeJSON(w, http.StatusOK, map[string]any{
		"compiled_at": rt.CompiledAt,
		"config":      RedactConfig(rt.Config),
	})
}

// RouteInfo is one compiled route as /api/v1/routes shows it.
type RouteInfo struct {
	Name         string            `json:"name"`
	Service      string            `json:"service"`
	Hosts        []string          `json:"hosts,omitempty"`
	Path         string            `json:"path"`
	Methods      []string          `json:"methods,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	Query        map[string]string `json:"query,omitempty"`
	StripPrefix  string            `json:"strip_prefix,omitempty"`
	Rewrite      string            `json:"rewrite,omitempty"`
	PreserveHost bool              `json:"preserve_host,omitempty"`
	MaxBodyBytes int64             `json:"max_body_bytes"`
	Plugins      []string          `json:"plugins"`
	Summary      string            `json:"summary"`
}

func (h *Handler) getRoutes(w http.ResponseWriter, r *http.Request) {
	rt := h.o.Runtime()
	if r.URL.Query().Get("format") == "text" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, rt.Describe())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": Routes(rt), "table": rt.Describe()})
}

// Routes lists the Runtime's routes in config order.
func Routes(rt *runtime.Runtime) []RouteInfo {
	out := make([]RouteInfo, 0, len(rt.Routes()))
	for i, cr := range rt.Routes() {
		rc := rt.Config.Routes[i]
		ri := RouteInfo{
			Name: cr.Name, Service: cr.Service, Hosts: rc.Match.Hosts, Path: rc.Match.Path, Methods: rc.Match.Methods,
			StripPrefix: rc.StripPrefix, Rewrite: rc.Rewrite, PreserveHost: rc.PreserveHost,
			MaxBodyBytes: cr.MaxBodyBytes, Plugins: pluginNames(rc.Plugins), Summary: cr.Summary(),
		}
		ri.Headers = describeMatches(rc.Match.Headers)
		ri.Query = describeMatches(rc.Match.Query)
		out = append(out, ri)
	}
	return out
}

func describeMatches(m map[string]config.ValueMatch) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		switch {
		case v.Present:
			out[k] = "(present)"
		case v.Regex != "":
			out[k] = "~ " + v.Regex
		default:
			out[k] = v.Exact
		}
	}
	return out
}

// pluginNames lists the YAML keys of the plugins a route sets.
func pluginNames(p config.Plugins) []string {
	names := []string{}
	v := reflect.ValueOf(p)
	for i := range v.NumField() {
		f := v.Type().Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && key != "" && key != "-" && !v.Field(i).IsZero() {
			names = append(names, key)
		}
	}
	return names
}

// ServiceInfo is one service as /api/v1/services shows it.
type ServiceInfo struct {
	Name     string       `json:"name"`
	Balancer string       `json:"balancer"`
	Breaker  string       `json:"breaker,omitempty"`
	Routes   []string     `json:"routes"`
	Targets  []TargetInfo `json:"targets"`
}

// TargetInfo is one target of a service.
type TargetInfo struct {
	URL      string `json:"url"`
	Weight   int    `json:"weight"`
	Healthy  bool   `json:"healthy"`
	InFlight int64  `json:"in_flight"`
	Breaker  string `json:"breaker,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

func (h *Handler) getServices(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"services": Services(h.o.Runtime(), h.o.States)})
}

// Services lists the Runtime's services with their targets' live state, overlaid with what
// states knows (nil: nothing more).
func Services(rt *runtime.Runtime, states StateSource) []ServiceInfo {
	extra := map[string]ServiceState{}
	if states != nil {
		for _, s := range states.Services() {
			extra[s.Name] = s
		}
	}
	routes := map[string][]string{}
	for _, r := range rt.Routes() {
		routes[r.Service] = append(routes[r.Service], r.Name)
	}
	out := make([]ServiceInfo, 0, len(rt.Config.Services))
	for _, svc := range rt.Config.Services {
		st := extra[svc.Name]
		si := ServiceInfo{Name: svc.Name, Balancer: svc.Balancer, Breaker: st.Breaker, Routes: routes[svc.Name], Targets: []TargetInfo{}}
		if si.Routes == nil {
			si.Routes = []string{}
		}
		byURL := map[string]TargetState{}
		for _, t := range st.Targets {
			byURL[t.URL] = t
		}
		for _, t := range rt.Targets(svc.Name) {
			u := t.String()
			ts := byURL[u]
			si.Targets = append(si.Targets, TargetInfo{URL: u, Weight: t.Weight, Healthy: t.Healthy(), InFlight: t.InFlight(), Breaker: ts.Breaker, Detail: ts.Detail})
		}
		out = append(out, si)
	}
	return out
}

func (h *Handler) getReloads(w http.ResponseWriter, r *http.Request) {
	rl := h.o.Reloads()
	if rl == nil {
		rl = []Reload{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"compiled_at": h.o.Runtime().CompiledAt, "reloads": rl})
}

func (h *Handler) reload(w http.ResponseWriter, r *http.Request) {
	if h.o.Reload == nil {
		writeError(w, http.StatusConflict, CodeNoConfigFile, "this gateway runs a config given in memory (demo); there is no file to reload")
		return
	}
	h.o.Logger.Info("admin: reload requested", "remote", r.RemoteAddr)
	if err := h.o.Reload(); err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: CodeInvalidConfig,
				Message: fmt.Sprintf("the config has %d problem(s); the previous config keeps serving", len(es)), Errors: configErrors(es, nil)})
			return
		}
		writeError(w, http.StatusUnprocessableEntity, CodeReloadFailed, "reload failed; the previous config keeps serving: "+err.Error())
		return
	}
	rt := h.o.Runtime()
	writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded", "compiled_at": rt.CompiledAt, "routes": len(rt.Routes()), "services": len(rt.Config.Services)})
}

// validate checks a posted config without applying it.
func (h *Handler) validate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxConfigBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeBadRequest, fmt.Sprintf("the config is larger than %d bytes", MaxConfigBytes))
			return
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, "could not read the request body")
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "post the YAML config as the request body")
		return
	}
	file := r.URL.Query().Get("file")
	if file == "" {
		file = "config.yaml"
	}
	// Values substituted from the environment are kept out of the messages: the validation
	// endpoint must not become a way to read the gateway's environment.
	used := map[string]string{}
	lookup := func(name string) (string, bool) {
		if h.o.LookupEnv == nil {
			return "", false
		}
		v, ok := h.o.LookupEnv(name)
		if ok {
			used[name] = v
		}
		return v, ok
	}
	cfg, err := config.Load(file, body, lookup)
	if err != nil {
		var es config.Errors
		if !errors.As(err, &es) {
			es = config.Errors{{File: file, Msg: err.Error()}}
		}
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: CodeInvalidConfig,
			Message: fmt.Sprintf("%d problem(s)", len(es)), Errors: configErrors(es, used)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"valid": true, "listeners": len(cfg.Listeners), "services": len(cfg.Services), "routes": len(cfg.Routes)})
}

func configErrors(es config.Errors, env map[string]string) []configError {
	scrub := func(s string) string {
		for name, v := range env {
			if len(v) >= 3 {
				// Messages may quote a value escaped (%q) or case-folded (a log level is
				// lowercased before it is checked): every such form is replaced.
				s = replaceFold(s, v, "${"+name+"}")
				if q := strconv.Quote(v); q[1:len(q)-1] != v {
					s = replaceFold(s, q[1:len(q)-1], "${"+name+"}")
				}
			}
		}
		return s
	}
	out := make([]configError, len(es))
	for i, e := range es {
		out[i] = configError{File: e.File, Line: e.Line, Column: e.Col, Path: e.Path, Message: scrub(e.Msg), Text: scrub(e.Error())}
	}
	return out
}

// replaceFold replaces every occurrence of old in s, compared without ASCII case, with repl.
func replaceFold(s, old, repl string) string {
	ls, lo := asciiLower(s), asciiLower(old)
	var b strings.Builder
	for {
		i := strings.Index(ls, lo)
		if i < 0 {
			break
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, ls = s[i+len(old):], ls[i+len(old):]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(s)
	return b.String()
}

// asciiLower lowercases ASCII letters only, so that byte offsets stay those of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (h *Handler) getLogLevel(w http.ResponseWriter, r *http.Request) {
	if h.o.LogLevel == nil {
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "the log level is not adjustable in this process")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"level": levelName(h.o.LogLevel.Level())})
}

func (h *Handler) setLogLevel(w http.ResponseWriter, r *http.Request) {
	if h.o.LogLevel == nil {
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "the log level is not adjustable in this process")
		return
	}
	var req struct {
		Level string `json:"level"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, `send {"level": "debug|info|warn|error"}`)
		return
	}
	var l slog.Level
	name := strings.ToLower(req.Level)
	found := false
	for _, n := range config.LogLevels {
		found = found || n == name
	}
	if !found || l.UnmarshalText([]byte(name)) != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("unknown level %q (want one of %s)", req.Level, strings.Join(config.LogLevels, ", ")))
		return
	}
	old := h.o.LogLevel.Level()
	h.o.LogLevel.Set(l)
	h.o.Logger.Log(r.Context(), max(l, slog.LevelInfo), "admin: log level changed", "from", levelName(old), "to", levelName(l))
	writeJSON(w, http.StatusOK, map[string]string{"level": levelName(l)})
}

func levelName(l slog.Level) string {
	switch {
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	}
	return "error"
}

// Stats is what the dashboard polls: cumulative per-route figures (rates and percentiles are
// the differences between two polls) and the gateway's state.
type Stats struct {
	Time          time.Time             `json:"time"`
	Version       string                `json:"version,omitempty"`
	UptimeSeconds float64               `json:"uptime_seconds"`
	Draining      bool                  `json:"draining"`
	InFlight      int64                 `json:"in_flight"`
	CompiledAt    time.Time             `json:"config_compiled_at"`
	Metrics       bool                  `json:"metrics"`
	Buckets       []float64             `json:"buckets"`
	Routes        []telemetry.RouteStat `json:"routes"`
}

func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	rt := h.o.Runtime()
	st := Stats{
		Time: time.Now(), Version: h.o.Version, UptimeSeconds: time.Since(h.started).Seconds(), Draining: h.o.Draining(),
		InFlight: rt.InFlight(), CompiledAt: rt.CompiledAt, Metrics: h.o.Metrics != nil,
		Buckets: telemetry.LatencyBuckets, Routes: h.o.Metrics.RouteStats(),
	}
	if st.Routes == nil {
		st.Routes = []telemetry.RouteStat{}
	}
	writeJSON(w, http.StatusOK, st)
}

// MarshalJSON renders durations in seconds.
func (l LimitState) MarshalJSON() ([]byte, error) {
	m := map[string]any{"limit": l.Limit, "max": l.Max, "window_seconds": l.Window.Seconds()}
	for k, v := range map[string]string{"scope": l.Scope, "counter": l.Counter, "store": l.Store} {
		if v != "" {
			m[k] = v
		}
	}
	if l.Burst != 0 {
		m["burst"] = l.Burst
	}
	if len(l.Tiers) > 0 {
		m["tiers"] = l.Tiers
	}
	if l.Error != "" {
		m["error"] = l.Error
	} else {
		m["remaining"], m["reset_after_seconds"] = l.Remaining, l.ResetAfter.Seconds()
	}
	return json.Marshal(m)
}

func (h *Handler) rateLimit(w http.ResponseWriter, r *http.Request) {
	if h.o.Limits == nil {
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "rate-limit inspection is not available in this build")
		return
	}
	key := r.URL.Query().Get("key")
	if key == "" || len(key) > 512 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "give the limiter key: ?key=user:42 (at most 512 bytes)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := h.o.Limits.LimitState(ctx, key)
	if errors.Is(err, ErrInvalidKey) {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	if err != nil {
		h.o.Logger.Warn("admin: rate-limit inspection failed", "error", err.Error())
		writeError(w, http.StatusBadGateway, CodeInternal, "the rate-limit store did not answer: "+err.Error())
		return
	}
	if st == nil {
		st = []LimitState{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": key, "limits": st})
}

func (h *Handler) purge(w http.ResponseWriter, r *http.Request) {
	if h.o.Cache == nil {
		writeError(w, http.StatusNotImplemented, CodeNotImplemented, "the response cache is not available in this build")
		return
	}
	var req struct {
		Route  string `json:"route"`
		Prefix string `json:"prefix"`
		Key    string `json:"key"`
		Tag    string `json:"tag"`
	}
	const usage = `send one of {"key": "/users/7?a=1"}, {"tag": "<surrogate key>"} or {"route": "<name or empty>", "prefix": "<URL prefix or empty>"} (not both empty: {"prefix": "/"} purges everything)`
	if r.ContentLength != 0 {
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, CodeBadRequest, usage)
			return
		}
	}
	if (req.Key != "" || req.Tag != "") && (req.Route != "" || req.Prefix != "" || req.Key != "" && req.Tag != "") {
		writeError(w, http.StatusBadRequest, CodeBadRequest, usage)
		return
	}
	if req.Route == "" && req.Prefix == "" && req.Key == "" && req.Tag == "" {
		// An empty request would purge every route's every entry: a slip (a client sending the
		// wrong field names, an empty body) must not empty the cache. Wanting that is said with
		// {"prefix": "/"}.
		writeError(w, http.StatusBadRequest, CodeBadRequest, "say what to purge: "+usage)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var (
		n   int
		err error
	)
	switch {
	case req.Key != "" || req.Tag != "":
		p, ok := h.o.Cache.(CacheKeyTagPurger)
		if !ok {
			writeError(w, http.StatusNotImplemented, CodeNotImplemented, "this cache purges by route and prefix only")
			return
		}
		if req.Key != "" {
			n, err = p.PurgeKey(ctx, req.Key)
		} else {
			n, err = p.PurgeTag(ctx, req.Tag)
		}
	default:
		n, err = h.o.Cache.Purge(ctx, req.Route, req.Prefix)
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, CodeInternal, "cache purge failed: "+err.Error())
		return
	}
	h.o.Logger.Info("admin: cache purged", "route", req.Route, "prefix", req.Prefix, "key", req.Key, "tag", req.Tag, "entries", n)
	writeJSON(w, http.StatusOK, map[string]any{"purged": n})
}
