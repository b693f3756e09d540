// Package cache is the gateway's shared HTTP response cache (RFC 9111, with RFC 5861's
// stale-while-revalidate and stale-if-error), in front of a route's handler.
//
// A GET whose stored response is fresh is answered from the store (HIT), a client's own
// conditional request with 304 when the stored response is a 2xx. A miss is proxied and its
// response streamed to the client while a copy is taken, up to the route's max_object_bytes;
// only then, and only if the response may be stored (status, Cache-Control, Vary,
// Authorization or an authenticated caller, Set-Cookie, a request's no-store), is it stored.
// Concurrent misses for one key send one request upstream; the others wait for its stored
// response (bounded by lock_timeout), and go upstream themselves as soon as the leader knows
// it will store nothing. A stale entry with a validator is revalidated with a conditional
// request; a 304 refreshes it. Unsafe methods invalidate the URL. A store that fails is
// bypassed: caching never fails a request.
//
// Keys are "c:<path?query sorted by name> <route> <hash of host[:port]>"; when the route keys
// on request headers or the user, or the response has Vary, that key holds a marker and each
// variant lives under the key plus a hash of the marker's nonce and the selecting values. The
// Hub purges entries by URL, URL prefix, route and tag for the admin API.
package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
	"github.com/gatehouse/gatehouse/internal/store"
)

// Values of the X-Cache header.
const (
	Hit         = "HIT"
	Miss        = "MISS"
	Stale       = "STALE"
	Revalidated = "REVALIDATED"
	Bypass      = "BYPASS"
)

// maxBackground bounds the stale-while-revalidate refreshes running at once per route; beyond
// it a stale entry is served without starting another.
const maxBackground = 32

// handler is one route's cache.
type handler struct {
	next       http.Handler
	store      store.CacheStore
	logger     *slog.Logger
	now        func() time.Time
	route      string
	xcache     string // canonical header name; "" for none
	ttl        time.Duration
	statuses   []bool // indexed by status
	maxObject  int64
	keyHost    bool
	keyQuery   bool
	keyUser    bool
	keyHeaders []string // canonical
	tagHeader  string   // canonical
	lock       time.Duration
	keepStale  time.Duration
	flights    *flights
	background chan struct{}
	bgWG       *sync.WaitGroup // tests wait for background refreshes
}

// New builds the route's cache middleware (nil when the route does not cache).
func New(cfg *config.Config, route *config.Route, deps middleware.Deps) (middleware.Middleware, error) {
	p := route.Plugins.Cache
	if p == nil {
		return nil, nil
	}
	st, err := acquireStore(cfg, deps)
	if err != nil {
		return nil, err
	}
	h := newHandler(cfg, route, st, deps.Logger)
	return func(next http.Handler) http.Handler { return h.wrap(next) }, nil
}

// wrap returns a copy of h in front of next, with its own coalescing state.
func (h *handler) wrap(next http.Handler) *handler {
	hh := *h
	hh.next = next
	hh.flights = &flights{m: map[string]*flight{}}
	hh.background = make(chan struct{}, maxBackground)
	hh.bgWG = &sync.WaitGroup{}
	return &hh
}

func newHandler(cfg *config.Config, route *config.Route, st store.CacheStore, logger *slog.Logger) *handler {
	p := route.Plugins.Cache
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{
		store: st, logger: logger, now: time.Now, route: route.Name,
		ttl: p.TTL.Duration, maxObject: p.MaxObjectBytes.Bytes,
		keyHost: p.Key.Host == nil || *p.Key.Host, keyQuery: p.Key.Query == nil || *p.Key.Query, keyUser: p.Key.User,
		tagHeader: textproto.CanonicalMIMEHeaderKey(p.TagHeader),
		lock:      p.LockTimeout.Duration, keepStale: p.KeepStale.Duration,
		statuses: make([]bool, 600),
	}
	if cfg.Cache.Header != config.CacheHeaderOff {
		h.xcache = textproto.CanonicalMIMEHeaderKey(cfg.Cache.Header)
	}
	for _, s := range p.Statuses {
		if s >= 0 && s < len(h.statuses) {
			h.statuses[s] = true
		}
	}
	for _, k := range p.Key.Headers {
		h.keyHeaders = append(h.keyHeaders, textproto.CanonicalMIMEHeaderKey(k))
	}
	slices.Sort(h.keyHeaders)
	return h
}

// acquireStore returns the configured store, registered with the process's Hub for purges.
func acquireStore(cfg *config.Config, deps middleware.Deps) (store.CacheStore, error) {
	hub, err := acquireHub(deps.Acquire)
	if err != nil {
		return nil, fmt.Errorf("cache hub: %w", err)
	}
	var key string
	var st store.CacheStore
	switch cfg.Cache.Store {
	case config.StoreRedis:
		if cfg.Store.Redis == nil {
			return nil, errors.New("cache.store is redis but store.redis is not configured")
		}
		key = store.RedisCacheKey(cfg.Store.Redis)
		st, err = store.AcquireRedisCache(deps.Acquire, cfg.Store.Redis, deps.Logger)
	default:
		key = store.MemoryCacheKey(cfg.Cache.MaxBytes.Bytes)
		st, err = store.AcquireMemoryCache(deps.Acquire, cfg.Cache.MaxBytes.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("cache store: %w", err)
	}
	hub.register(key, st)
	return st, nil
}

// reqKey is where a request's response lives.
type reqKey struct {
	url     string // path and (sorted) query
	primary string
	sec     string // the route's own selecting values (key.headers, key.user)
}

func (k *reqKey) flight() string { return k.primary + "\x00" + k.sec }

func (h *handler) keyOf(r *http.Request, info *httpx.Info) reqKey {
	p := r.URL.EscapedPath()
	if info != nil && info.Path != "" {
		p = info.Path
	}
	return h.keyFor(p, r.URL.RawQuery, r, info)
}

func (h *handler) keyFor(path, rawQuery string, r *http.Request, info *httpx.Info) reqKey {
	u := path
	if h.keyQuery && rawQuery != "" {
		u += "?" + sortQuery(rawQuery)
	}
	sum := sha256.Sum256([]byte(originKey(r, info, h.keyHost)))
	k := reqKey{url: u, primary: "c:" + u + " " + h.route + " " + hex.EncodeToString(sum[:8])}
	if len(h.keyHeaders) > 0 || h.keyUser {
		var b strings.Builder
		for _, name := range h.keyHeaders {
			b.WriteString(name)
			b.WriteByte('=')
			b.WriteString(strconv.Quote(strings.Join(r.Header[name], ",")))
			b.WriteByte('\n')
		}
		if h.keyUser {
			b.WriteString("user=")
			if info != nil {
				b.WriteString(userOf(info.Identity))
			}
		}
		k.sec = b.String()
	}
	return k
}

// originKey is the scheme and (withHost) host a request is keyed on: what the proxy tells the
// upstream in X-Forwarded-Proto and X-Forwarded-Host, a trusted proxy's values included, since
// an upstream that builds absolute URLs from them answers differently for each. The host is
// lowercased and keeps its port, but for the scheme's default: "example.com:80" and
// "example.com" name the same origin (RFC 9110 4.2.3).
func originKey(r *http.Request, info *httpx.Info, withHost bool) string {
	scheme, host := httpx.ForwardedOrigin(r, info != nil && info.PeerTrusted)
	scheme = strings.ToLower(scheme)
	if !withHost {
		return scheme
	}
	return scheme + "://" + hostKey(host, scheme)
}

// hostKey lowercases host and drops the scheme's default port.
func hostKey(host, scheme string) string {
	host = strings.ToLower(host)
	def := "80"
	if scheme == "https" {
		def = "443"
	}
	if _, port, err := net.SplitHostPort(host); err == nil && port == def {
		host = host[:len(host)-len(def)-1]
	}
	return host
}

// userOf is who id is for key.user: the JWT issuer and subject, the API-key consumer or the
// forward-auth subject; "" when id is nil or names no one (a token without sub, forward auth
// without a subject header), so such callers cannot be told apart.
func userOf(id *httpx.Identity) string {
	if id == nil || id.Subject == "" && id.Consumer == "" {
		return ""
	}
	return strconv.Quote(id.Method) + " " + strconv.Quote(id.Issuer) + " " + strconv.Quote(id.Subject) + " " + strconv.Quote(id.Consumer)
}

// restricted reports whether RFC 9111 3.5 limits r to stored responses the origin marked
// shareable: r carries Authorization or the gateway authenticated it, and key.user does not
// keep its caller's responses apart. The identity counts, not the header: an API key, a token
// in a cookie, forward auth and hidden credentials leave no Authorization for the cache to see.
func (h *handler) restricted(r *http.Request, info *httpx.Info) bool {
	var id *httpx.Identity
	if info != nil {
		id = info.Identity
	}
	if id == nil && r.Header["Authorization"] == nil {
		return false
	}
	return !h.keyUser || userOf(id) == ""
}

// sortQuery sorts the query's parameters by name as they were sent (no re-encoding). The sort
// is stable: repeated names keep their order, which origins read ("first value wins"), so
// ?id=1&id=2 and ?id=2&id=1 stay apart.
func sortQuery(q string) string {
	if !strings.Contains(q, "&") {
		return q
	}
	parts := strings.Split(q, "&")
	slices.SortStableFunc(parts, func(a, b string) int {
		return strings.Compare(paramName(a), paramName(b))
	})
	return strings.Join(parts, "&")
}

// paramName is the (still encoded) name of one name=value query parameter.
func paramName(p string) string {
	name, _, _ := strings.Cut(p, "=")
	return name
}

// variantKey is the key of the variant of marker m selected by r.
func variantKey(primary string, m *store.CacheEntry, sec string, r *http.Request) (string, []string) {
	vary := make([]string, 0, 2*len(m.Vary))
	vary = append(vary, m.Vary...)
	for _, name := range m.Vary {
		vary = append(vary, strings.Join(r.Header[name], ","))
	}
	s := sha256.New()
	s.Write([]byte(m.Nonce))
	s.Write([]byte{0})
	s.Write([]byte(sec))
	for _, v := range vary {
		s.Write([]byte{0})
		s.Write([]byte(v))
	}
	return primary + " " + hex.EncodeToString(s.Sum(nil)[:12]), vary
}

// varyMatches reports whether r selects the stored response e (for coalesced waiters, whose
// Vary values may differ from the leader's).
func varyMatches(e *store.CacheEntry, r *http.Request) bool {
	n := len(e.Vary) / 2
	for i := 0; i < n; i++ {
		if strings.Join(r.Header[e.Vary[i]], ",") != e.Vary[n+i] {
			return false
		}
	}
	return true
}

// lookup finds r's stored response. key is where it lives (primary or variant key); marker is
// the Vary marker met on the way, if any. Store errors are misses.
func (h *handler) lookup(ctx context.Context, k *reqKey, r *http.Request) (e *store.CacheEntry, key string, marker *store.CacheEntry) {
	e, err := h.store.Get(ctx, k.primary)
	if err != nil || e == nil {
		return nil, "", nil
	}
	if e.Status != 0 {
		if k.sec != "" {
			return nil, "", nil // stored before the route keyed on headers or the user
		}
		return e, k.primary, nil
	}
	marker = e
	key, _ = variantKey(k.primary, marker, k.sec, r)
	v, err := h.store.Get(ctx, key)
	if err != nil || v == nil || v.Status == 0 {
		return nil, "", marker
	}
	return v, key, marker
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions, http.MethodTrace, "PRI":
		h.bypass(w, r)
		return
	default:
		h.serveUnsafe(w, r)
		return
	}
	if r.Header["Range"] != nil || r.Header["Upgrade"] != nil {
		h.bypass(w, r)
		return
	}
	info := httpx.InfoFrom(r.Context())
	k := h.keyOf(r, info)
	ctx := r.Context()
	restricted := h.restricted(r, info)
	e, key, marker := h.lookup(ctx, &k, r)
	if e != nil && !reusable(e, restricted) {
		e = nil
	}
	if e != nil {
		st := h.stateOf(e, h.now())
		switch {
		case st.fresh:
			h.serveEntry(w, r, e, Hit, st.age)
			return
		case st.swr:
			h.serveEntry(w, r, e, Stale, st.age)
			h.refresh(r, info, k, key, e, marker)
			return
		}
		if !st.validate && !st.sie {
			e = nil // useless: fetch anew
		}
	}
	if r.Method == http.MethodHead {
		h.fetch(w, r, k, fetchState{}) // HEAD responses are never stored
		return
	}
	if h.lock > 0 {
		f, leader := h.flights.join(k.flight())
		if !leader {
			if h.wait(w, r, f, restricted) {
				return
			}
		} else {
			// The waiters are released once: early by the captureWriter when it knows nothing
			// will be stored, else with the stored entry; the deferred call covers a handler
			// that panics (an aborted body copy).
			var once sync.Once
			done := func(e *store.CacheEntry) { once.Do(func() { h.flights.finish(k.flight(), f, e) }) }
			defer done(nil)
			done(h.fetch(w, r, k, fetchState{stale: e, staleKey: key, marker: marker, done: done}))
			return
		}
	}
	h.fetch(w, r, k, fetchState{stale: e, staleKey: key, marker: marker})
}

// wait waits for the leader of a coalesced miss; it reports whether the response was served.
func (h *handler) wait(w http.ResponseWriter, r *http.Request, f *flight, restricted bool) bool {
	t := time.NewTimer(h.lock)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		return false
	case <-r.Context().Done():
		return false
	}
	e := f.entry
	if e == nil || !varyMatches(e, r) || !reusable(e, restricted) {
		return false
	}
	h.serveEntry(w, r, e, Hit, h.stateOf(e, h.now()).age)
	return true
}

// reusable applies RFC 9111 3.5: a stored response is used for a restricted request (see
// handler.restricted) only if it says so.
func reusable(e *store.CacheEntry, restricted bool) bool {
	if !restricted {
		return true
	}
	d := parseCacheControl(e.Header["Cache-Control"])
	return d.public || d.hasSMaxAge || d.mustRevalidate
}

// setXCache sets the X-Cache header and records the verdict for the request's metrics.
func (h *handler) setXCache(r *http.Request, hdr http.Header, v string) {
	if info := httpx.InfoFrom(r.Context()); info != nil {
		info.CacheStatus = v
	}
	if h.xcache != "" {
		hdr[h.xcache] = []string{v}
	}
}

func (h *handler) bypass(w http.ResponseWriter, r *http.Request) {
	h.setXCache(r, w.Header(), Bypass)
	h.next.ServeHTTP(w, r)
}

// serveEntry answers from a stored response.
func (h *handler) serveEntry(w http.ResponseWriter, r *http.Request, e *store.CacheEntry, how string, age time.Duration) {
	hdr := w.Header()
	// RFC 9110 13.2.1: preconditions apply only to a response that would be 2xx; a cached 404
	// answers a conditional request with the 404.
	if e.Status >= 200 && e.Status < 300 && notModified(r, e.Header) {
		for _, k := range []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary"} {
			if vs := e.Header[k]; len(vs) > 0 {
				hdr[k] = append(hdr[k], vs...)
			}
		}
		h.stamp(hdr, r, how, age)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	for k, vs := range e.Header {
		hdr[k] = append(hdr[k], vs...)
	}
	h.stamp(hdr, r, how, age)
	if e.Status != http.StatusNoContent && e.Status >= 200 {
		hdr["Content-Length"] = []string{strconv.Itoa(len(e.Body))}
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead && len(e.Body) > 0 {
		_, _ = w.Write(e.Body)
	}
}

func (h *handler) stamp(hdr http.Header, r *http.Request, how string, age time.Duration) {
	hdr["Age"] = []string{strconv.FormatInt(int64(age/time.Second), 10)}
	h.setXCache(r, hdr, how)
	if info := httpx.InfoFrom(r.Context()); info != nil && info.RequestID != "" {
		hdr["X-Request-Id"] = []string{info.RequestID}
	}
}

// serveUnsafe proxies an unsafe request and, if it succeeded, invalidates the stored responses
// of its URL and of the same-host URLs in Location and Content-Location (RFC 9111 4.4).
func (h *handler) serveUnsafe(w http.ResponseWriter, r *http.Request) {
	h.setXCache(r, w.Header(), Bypass)
	sw := &httpx.StatusWriter{ResponseWriter: w}
	h.next.ServeHTTP(sw, r)
	if sw.Status < 200 || sw.Status >= 400 {
		return
	}
	info := httpx.InfoFrom(r.Context())
	k := h.keyOf(r, info)
	keys := []string{k.primary}
	for _, name := range []string{"Location", "Content-Location"} {
		loc, err := url.Parse(w.Header().Get(name))
		if err != nil || loc.Path == "" || loc.Host != "" && !strings.EqualFold(loc.Host, r.Host) {
			continue
		}
		keys = append(keys, h.keyFor(loc.EscapedPath(), loc.RawQuery, r, info).primary)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Second)
	defer cancel()
	if _, err := h.store.Delete(ctx, keys...); err != nil {
		h.logger.Debug("cache invalidation failed", "route", h.route, "error", err.Error())
	}
}

// flights coalesces concurrent misses of one key.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done  chan struct{}
	entry *store.CacheEntry // the stored response, nil when nothing was stored (never one that was not)
}

// join returns the key's flight and whether the caller leads it.
func (fs *flights) join(key string) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	fs.m[key] = f
	return f, true
}

func (fs *flights) finish(key string, f *flight, e *store.CacheEntry) {
	f.entry = e
	fs.mu.Lock()
	if fs.m[key] == f {
		delete(fs.m, key)
	}
	fs.mu.Unlock()
	close(f.done)
}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
