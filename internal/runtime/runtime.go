// Package runtime compiles a validated config into an immutable Runtime: the route table, one
// pre-built handler chain per route and the services they proxy to. A Runtime is an
// http.Handler; a reload compiles a new one and swaps it in atomically, and the old one is
// retired once its in-flight requests finish.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware/edge"
	"github.com/gatehouse/gatehouse/internal/middleware/ratelimit"
	"github.com/gatehouse/gatehouse/internal/proxy"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Deps are the long-lived things a Runtime uses but does not own.
type Deps struct {
	// Registry holds upstream pools and target state shared across reloads. Required.
	Registry *upstream.Registry
	// Logger receives operational and security logs. Default: slog.Default().
	Logger *slog.Logger
	// AccessLog, when non-nil, receives one record per request.
	AccessLog *telemetry.AccessLogger
	// Metrics, when non-nil, records request and upstream metrics (once per request, at the edge).
	Metrics *telemetry.Metrics
	// Tracing, when non-nil, records a server span per request.
	Tracing *telemetry.Tracing
}

// Route is one compiled route.
type Route struct {
	Name    string
	Service string
	// MaxBodyBytes caps the request body (413 beyond).
	MaxBodyBytes int64
	// Handler is the route's whole chain, ending in the proxy.
	Handler http.Handler
	summary string
	cors    bool
}

// underscorePolicy is what the gateway does with request header names containing "_".
type underscorePolicy uint8

const (
	underscoreDrop underscorePolicy = iota
	underscoreReject
	underscoreAllow
)

func parseUnderscorePolicy(s string) underscorePolicy {
	switch s {
	case "reject":
		return underscoreReject
	case "allow":
		return underscoreAllow
	}
	return underscoreDrop
}

// Runtime is a compiled, immutable config. It is safe for concurrent use.
type Runtime struct {
	// Config is the config it was compiled from; it must not be modified.
	Config  *config.Config
	table   *router.Table
	routes  []*Route
	trusted *httpx.Trusted
	maxHdr  int
	// underscore is server.underscore_headers.
	underscore underscorePolicy
	// pathParams is server.path_parameters: allow (a raw ';' in the path is kept).
	pathParams bool
	// identity are the header names only the gateway may set (config.AuthStripHeaders): a
	// client's copies are dropped on arrival, before routing and every policy.
	identity map[string]struct{}
	logger   *slog.Logger
	access   *telemetry.AccessLogger
	inflight atomic.Int64
	obs      observer
	services map[string][]*upstream.Target
	// geo resolves client countries before routing (nil without server.geo).
	geo *edge.Geo
	// secHeaders are the server's security headers, for answers outside any route.
	secHeaders *edge.ServerHeaders
	// upstreams are the compiled services by name.
	upstreams map[string]*upstream.Service
	// limits reads the rate-limit state of an identity over this config's limits.
	limits   *ratelimit.Inspector
	releases []func()
	retire   sync.Once
	// CompiledAt is when Compile finished.
	CompiledAt time.Time
}

// Compile builds a Runtime. On error everything acquired so far is released.
func Compile(cfg *config.Config, deps Deps) (rt *Runtime, err error) {
	if deps.Registry == nil {
		return nil, errors.New("runtime: registry is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	rt = &Runtime{Config: cfg, logger: deps.Logger, access: deps.AccessLog, maxHdr: int(cfg.Server.MaxHeaderBytes.Bytes),
		underscore: parseUnderscorePolicy(cfg.Server.UnderscoreHeaders), pathParams: cfg.Server.PathParameters == "allow",
		secHeaders: edge.NewServerHeaders(cfg), identity: map[string]struct{}{}}
	for _, name := range cfg.AuthStripHeaders() {
		rt.identity[name] = struct{}{}
	}
	built := rt // "return nil, err" clears rt before this runs
	defer func() {
		if err != nil {
			built.releaseAll()
			rt = nil
		}
	}()

	specs, specErrs := config.BuildSpecs(cfg)
	if len(specErrs) > 0 {
		return nil, fmt.Errorf("compile routes: invalid match in config (run gatehouse validate)")
	}
	if rt.table, err = router.Compile(specs); err != nil {
		return nil, fmt.Errorf("compile routes: %w", err)
	}

	var prefixes []netip.Prefix
	for _, s := range cfg.Server.TrustedProxies {
		p, perr := config.ParsePrefix(s)
		if perr != nil {
			return nil, fmt.Errorf("trusted_proxies: %w", perr)
		}
		prefixes = append(prefixes, p)
	}
	rt.trusted = httpx.NewTrusted(prefixes)

	if g := cfg.Server.Geo; g != nil {
		key := "edge/geo|" + g.Database + "|" + g.Header + "|" + g.UpstreamHeader
		if g.Database != "" {
			// A new database file on disk is picked up by the next reload.
			if fi, serr := os.Stat(g.Database); serr == nil {
				key += "|" + fi.ModTime().String()
			}
		}
		v, release, gerr := deps.Registry.Resources.Acquire(key, func() (io.Closer, error) { return edge.NewGeo(g) })
		if gerr != nil {
			return nil, fmt.Errorf("server.geo: %w", gerr)
		}
		rt.releases = append(rt.releases, release)
		rt.geo = v.(*edge.Geo)
	}

	services := map[string]*config.Service{}
	targets := map[string][]*upstream.Target{}
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		services[svc.Name] = svc
		ts, release, aerr := deps.Registry.Targets.Acquire(targetsKey(svc), func() ([]*upstream.Target, error) {
			return buildTargets(svc)
		})
		if aerr != nil {
			return nil, fmt.Errorf("service %s: %w", svc.Name, aerr)
		}
		rt.releases = append(rt.releases, release)
		targets[svc.Name] = ts
	}

	// Each service's upstream.Service: balancer plus resilience state (breakers, health
	// checker, retry budget) shared across reloads through the registry. Services that fall back
	// to another service are built second, once the one they refer to exists.
	upstreams := map[string]*upstream.Service{}
	for _, second := range []bool{false, true} {
		for i := range cfg.Services {
			svc := &cfg.Services[i]
			fallback := upstream.FallbackServiceName(svc)
			if (fallback != "") != second {
				continue
			}
			sc, serr := upstream.ConfigFromService(svc)
			if serr != nil {
				return nil, fmt.Errorf("service %s: %w", svc.Name, serr)
			}
			if fallback != "" {
				fb, ok := upstreams[fallback]
				if !ok {
					return nil, fmt.Errorf("service %s: fallback service %q cannot itself fall back to a service", svc.Name, fallback)
				}
				sc.Fallback = &upstream.Fallback{Service: fb}
			}
			// The service-level pool serves calls outside routes (upstream.Service.Do); routes
			// without timeout overrides share it.
			settings := transportSettings(svc, svc.Timeouts)
			tr, release, terr := deps.Registry.Transports.Acquire(settings, func() (upstream.Transport, error) {
				return upstream.NewTransport(settings)
			})
			if terr != nil {
				return nil, fmt.Errorf("service %s: %w", svc.Name, terr)
			}
			rt.releases = append(rt.releases, release)
			if sc.Active != nil {
				// Health probes reach the targets as requests do: same TLS, same protocol.
				sc.Active.Protocol, sc.Active.TLS = settings.Protocol, settings.TLS
			}
			sc.Targets, sc.Transport, sc.Logger = targets[svc.Name], tr, deps.Logger
			us, release, uerr := deps.Registry.AcquireService(sc)
			if uerr != nil {
				return nil, fmt.Errorf("service %s: %w", svc.Name, uerr)
			}
			rt.releases = append(rt.releases, release)
			upstreams[svc.Name] = us
		}
	}

	rt.upstreams = upstreams
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		var svc *config.Service
		if rc.Service != "" {
			var ok bool
			if svc, ok = services[rc.Service]; !ok {
				return nil, fmt.Errorf("route %s: unknown service %q", rc.Name, rc.Service)
			}
		}
		route, rerr := rt.compileRoute(rc, svc, deps)
		if rerr != nil {
			return nil, fmt.Errorf("route %s: %w", rc.Name, rerr)
		}
		rt.routes = append(rt.routes, route)
	}
	if rt.limits, err = ratelimit.NewInspector(cfg, rt.middlewareDeps(deps)); err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	rt.services = targets
	rt.initObserver(deps)
	rt.CompiledAt = time.Now()
	return rt, nil
}

// compileRoute builds one route: its final handler (a proxy to its service, or an aggregate,
// GraphQL or gRPC-transcoding handler) wrapped in its middleware chain.
func (rt *Runtime) compileRoute(rc *config.Route, svc *config.Service, deps Deps) (*Route, error) {
	var (
		final   http.Handler
		summary string
		err     error
	)
	switch {
	case rc.Aggregate != nil:
		final, summary, err = rt.aggregateHandler(rc, deps)
	case rc.GraphQL != nil:
		final, summary, err = rt.graphqlHandler(rc, deps)
	case rc.GRPC != nil:
		final, summary, err = rt.grpcHandler(rc, svc, deps)
	default:
		final, summary, err = rt.proxyHandler(rc, svc, deps)
	}
	if err != nil {
		return nil, err
	}
	maxBody := rt.Config.Server.MaxBodyBytes.Bytes
	if rc.MaxBodyBytes.Set() {
		maxBody = rc.MaxBodyBytes.Bytes
	}
	handler, err := rt.buildChain(rc, svc, final, deps)
	if err != nil {
		return nil, err
	}
	name := ""
	if svc != nil {
		name = svc.Name
	}
	summary += fmt.Sprintf(" max_body=%d", maxBody)
	return &Route{Name: rc.Name, Service: name, MaxBodyBytes: maxBody, Handler: handler, summary: summary, cors: rc.Plugins.CORS != nil}, nil
}

// Upstream returns the compiled upstream service by name (nil if none): aggregation and
// protocol translation call services through it, with their balancer, breaker and retries.
func (rt *Runtime) Upstream(name string) *upstream.Service { return rt.upstreams[name] }

// proxyHandler builds the reverse proxy to the route's service.
func (rt *Runtime) proxyHandler(rc *config.Route, svc *config.Service, deps Deps) (http.Handler, string, error) {
	us := rt.upstreams[svc.Name]
	ts := us.Targets()
	to := config.EffectiveTimeouts(svc.Timeouts, rc.Timeouts)
	settings := transportSettings(svc, to)
	tr, release, err := deps.Registry.Transports.Acquire(settings, func() (upstream.Transport, error) {
		return upstream.NewTransport(settings)
	})
	if err != nil {
		return nil, "", err
	}
	rt.releases = append(rt.releases, release)
	var hashKind, hashName string
	if svc.HashOn != "" {
		if hashKind, hashName, err = config.ParseHashOn(svc.HashOn); err != nil {
			return nil, "", err
		}
	}
	ph, err := proxy.New(proxy.Options{
		Route:              rc.Name,
		Service:            svc.Name,
		Upstream:           us,
		HashKind:           hashKind,
		HashName:           hashName,
		Transport:          tr,
		StripPrefix:        rc.StripPrefix,
		Rewrite:            rc.Rewrite,
		PreserveHost:       rc.PreserveHost,
		RequestTimeout:     to.Request.Duration,
		BoundWrites:        rt.Config.Server.WriteTimeout.Duration == 0,
		UpgradeIdleTimeout: rt.Config.Server.IdleTimeout.Duration,
		RequestHeaders:     httpx.NewHeaderOps(rc.RequestHeaders),
		ResponseHeaders:    httpx.NewHeaderOps(rc.ResponseHeaders),
		Trusted:            rt.trusted,
		Logger:             rt.logger,
	})
	if err != nil {
		return nil, "", err
	}
	var sum strings.Builder
	fmt.Fprintf(&sum, "service %s (%s over", svc.Name, svc.Balancer)
	for _, t := range ts {
		fmt.Fprintf(&sum, " %s*%d", t.URL, t.Weight)
	}
	sum.WriteString(")")
	if rc.StripPrefix != "" {
		fmt.Fprintf(&sum, " strip_prefix=%s", rc.StripPrefix)
	}
	if rc.Rewrite != "" {
		fmt.Fprintf(&sum, " rewrite=%s", rc.Rewrite)
	}
	if rc.PreserveHost {
		sum.WriteString(" preserve_host")
	}
	fmt.Fprintf(&sum, " timeouts=%v/%v/%v", to.Connect.Duration, to.ResponseHeader.Duration, to.Request.Duration)
	return ph, sum.String(), nil
}

// targetsKey identifies a service's target set: same name and same targets share state
// (in-flight counts, health) across reloads.
func targetsKey(svc *config.Service) string {
	var b strings.Builder
	b.WriteString(svc.Name)
	for _, t := range svc.Targets {
		b.WriteString("|")
		b.WriteString(t.URL)
		b.WriteString("#")
		b.WriteString(strconv.Itoa(t.Weight))
	}
	return b.String()
}

func buildTargets(svc *config.Service) ([]*upstream.Target, error) {
	out := make([]*upstream.Target, 0, len(svc.Targets))
	for _, t := range svc.Targets {
		u, err := url.Parse(t.URL)
		if err != nil {
			return nil, fmt.Errorf("target %q: %w", t.URL, err)
		}
		out = append(out, upstream.NewTarget(u, t.Weight))
	}
	return out, nil
}

// Describe returns the compiled route table in precedence order (see router.Table.Describe)
// followed by what each route does: its service, path rewrite, timeouts and body limit.
func (rt *Runtime) Describe() string {
	var b strings.Builder
	b.WriteString(rt.table.Describe())
	b.WriteString("routes:\n")
	for _, r := range rt.routes {
		fmt.Fprintf(&b, "  %s => %s\n", r.Name, r.summary)
	}
	return b.String()
}

// LimitState reads the state of every rate limit of this config counting the identity key
// (see ratelimit.Inspector for the syntax) without counting anything: the admin API's
// /api/v1/ratelimit. Like a request, it keeps the Runtime's stores open while it runs.
func (rt *Runtime) LimitState(ctx context.Context, key string) ([]ratelimit.State, error) {
	rt.inflight.Add(1)
	defer rt.inflight.Add(-1)
	return rt.limits.State(ctx, key)
}

// Routes returns the compiled routes in config order.
func (rt *Runtime) Routes() []*Route { return rt.routes }

// InFlight reports how many requests this Runtime is serving.
func (rt *Runtime) InFlight() int64 { return rt.inflight.Load() }

// Retire releases the Runtime's shared resources once its in-flight requests have finished.
// It returns at once; call it after the Runtime was swapped out.
func (rt *Runtime) Retire() {
	rt.retire.Do(func() {
		go func() {
			// Releasing never breaks a request still in flight (a transport only loses idle
			// connections), so the wait is bounded to keep a stuck stream from pinning pools.
			deadline := time.Now().Add(10 * time.Minute)
			for rt.inflight.Load() > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			rt.releaseAll()
		}()
	})
}

// Close releases the Runtime's shared resources at once (for a Runtime that never served).
func (rt *Runtime) Close() { rt.retire.Do(rt.releaseAll) }

func (rt *Runtime) releaseAll() {
	for i := len(rt.releases) - 1; i >= 0; i-- {
		rt.releases[i]()
	}
	rt.releases = nil
}

// transportSettings is the pool key of a service with the given effective timeouts: routes
// that do not override connect/response_header timeouts share the service's pool.
func transportSettings(svc *config.Service, to config.Timeouts) upstream.TransportSettings {
	ts := upstream.TransportSettings{
		Service:          svc.Name,
		Connect:          to.Connect.Duration,
		ResponseHeader:   to.ResponseHeader.Duration,
		IdleTimeout:      svc.Pool.IdleTimeout.Duration,
		MaxIdlePerTarget: svc.Pool.MaxIdlePerTarget,
		MaxPerTarget:     svc.Pool.MaxPerTarget,
		Protocol:         svc.Protocol,
	}
	if t := svc.TLS; t != nil {
		ts.TLS = upstream.TLSSettings{CAFiles: strings.Join(t.CA, "\n"), ServerName: t.ServerName,
			CertFile: t.Cert, KeyFile: t.Key, InsecureSkipVerify: t.InsecureSkipVerify}
	}
	return ts
}
