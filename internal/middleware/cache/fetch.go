package cache

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/store"
)

// refreshTimeout bounds a background revalidation, whatever the route's own timeouts.
const refreshTimeout = 30 * time.Second

// fetchState is what the cache knows when it goes upstream.
type fetchState struct {
	stale    *store.CacheEntry // a stale stored response, to revalidate or to fall back on
	staleKey string            // where stale lives
	marker   *store.CacheEntry // the URL's Vary marker, if any
	// done releases the coalesced waiters of a leader (nil when there are none). It is called
	// with nil as soon as nothing will be stored, so waiters go upstream without waiting for
	// the leader's body; a later call is a no-op.
	done func(*store.CacheEntry)
}

// fetch sends r upstream through the route's handler, streams the response to w and stores a
// copy when allowed. It returns the entry it stored (nil if none), for coalesced waiters: an
// entry that was not stored may be meant for this client only (its Set-Cookie, say).
func (h *handler) fetch(w http.ResponseWriter, r *http.Request, k reqKey, fs fetchState) *store.CacheEntry {
	now := h.now()
	c := &captureWriter{h: h, w: w, hdr: make(http.Header), r: r, k: k, fs: fs, reqTime: now,
		restricted: h.restricted(r, httpx.InfoFrom(r.Context())),
		// RFC 9111 5.2.1.5: nothing of the exchange is stored (the response may still be served
		// from the cache, which the lookup did).
		noStore: parseCacheControl(r.Header["Cache-Control"]).noStore}
	out := r
	if fs.stale != nil {
		st := h.stateOf(fs.stale, now)
		c.revalidating = st.validate
		c.staleOnError = st.sie
	}
	_, inm := r.Header["If-None-Match"]
	_, ims := r.Header["If-Modified-Since"]
	if r.Method == http.MethodGet && (inm || ims || c.revalidating) {
		// The cache asks with its own validators (or none, to get a response it can store) and
		// answers the client's conditions itself.
		out = r.Clone(r.Context())
		c.clientCond = inm || ims
		delete(out.Header, "If-None-Match")
		delete(out.Header, "If-Modified-Since")
		if c.revalidating {
			if v := fs.stale.Header.Get("Etag"); v != "" {
				out.Header["If-None-Match"] = []string{v}
			}
			if v := fs.stale.Header.Get("Last-Modified"); v != "" {
				out.Header["If-Modified-Since"] = []string{v}
			}
		}
	}
	h.next.ServeHTTP(c, out)
	return c.finish()
}

// Modes of a captureWriter, decided when the status is written.
const (
	modeNone              = iota
	modePass              // stream to the client (and maybe capture)
	modeNotModified       // the origin confirmed the stale entry: swallow, then serve the entry
	modeStaleError        // the origin failed and stale-if-error allows the stale entry: swallow, then serve it
	modeClientNotModified // an unstored response matches the client's own validators: 304, swallow the body
)

// captureWriter is the ResponseWriter the route's handler writes to on a miss. It gives the
// handler a header map of its own (so headers set by earlier middleware, such as rate-limit
// headers, are never stored), streams the response to the client, and copies the body while it
// stays within max_object_bytes.
type captureWriter struct {
	h            *handler
	w            http.ResponseWriter
	hdr          http.Header
	r            *http.Request
	k            reqKey
	fs           fetchState
	restricted   bool // RFC 9111 3.5 applies (see handler.restricted)
	noStore      bool // the request said Cache-Control: no-store
	clientCond   bool // the client's If-None-Match/If-Modified-Since were kept from the origin
	revalidating bool
	staleOnError bool
	reqTime      time.Time
	respTime     time.Time
	mode         int
	status       int
	capture      bool
	ttl          time.Duration
	buf          []byte
	tags         []string
}

func (c *captureWriter) Header() http.Header { return c.hdr }

func (c *captureWriter) WriteHeader(code int) {
	if c.mode != modeNone || code < 200 {
		return // informational responses (103 Early Hints) are not relayed on cached routes
	}
	c.respTime = c.h.now()
	c.status = code
	switch {
	case code == http.StatusNotModified && c.revalidating:
		c.mode = modeNotModified
		return
	case c.staleOnError && (code == 500 || code == 502 || code == 503 || code == 504):
		c.mode = modeStaleError
		c.release()
		return
	}
	c.mode = modePass
	if c.r.Method == http.MethodGet && !c.noStore {
		if ttl, ok := c.h.storeTTL(code, c.hdr, c.restricted, c.reqTime, c.respTime); ok {
			c.capture, c.ttl = true, ttl
			if cl, err := strconv.ParseInt(c.hdr.Get("Content-Length"), 10, 64); err == nil {
				if cl > c.h.maxObject || cl < 0 {
					c.capture = false // too large (or nonsense): stream it through uncached
				} else {
					c.buf = make([]byte, 0, min(cl, 64<<10)) // grows as the body arrives
				}
			}
		}
	}
	if !c.capture {
		c.release()
		if c.clientCond && c.answerNotModified(code) {
			return
		}
	}
	c.tags = tagsOf(c.hdr[c.h.tagHeader])
	out := c.w.Header()
	for k, vs := range c.hdr {
		if k == c.h.tagHeader {
			continue
		}
		out[k] = append(out[k], vs...)
	}
	c.h.setXCache(c.r, out, Miss)
	c.w.WriteHeader(code)
}

// release lets coalesced waiters go upstream now: this response will not be stored, and
// holding them until its body ends (a slow stream, a large download) only delays them.
func (c *captureWriter) release() {
	if c.fs.done != nil {
		c.fs.done(nil)
		c.fs.done = nil
	}
}

// answerNotModified answers the client's own conditional request with 304 when the response,
// which will not be stored and so cannot answer it later, matches the validators the cache
// kept from the origin. Only a 2xx (RFC 9110 13.2.1) with a Content-Length qualifies: its body
// is then read and dropped, which must end; an endless stream would hold the client's
// connection.
func (c *captureWriter) answerNotModified(code int) bool {
	if code < 200 || code >= 300 || c.r.Method != http.MethodGet {
		return false
	}
	if cl, err := strconv.ParseInt(c.hdr.Get("Content-Length"), 10, 64); err != nil || cl < 0 {
		return false
	}
	if !notModified(c.r, c.hdr) {
		return false
	}
	c.mode = modeClientNotModified
	out := c.w.Header()
	for k, vs := range c.hdr {
		switch k {
		case c.h.tagHeader, "Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Trailer", "Transfer-Encoding":
			continue // the tag header is internal; the rest describe the body a 304 does not have
		}
		out[k] = append(out[k], vs...)
	}
	c.h.setXCache(c.r, out, Miss)
	c.w.WriteHeader(http.StatusNotModified)
	// The body is drained before the handler returns: the client need not wait for it.
	_ = http.NewResponseController(c.w).Flush()
	return true
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.mode == modeNone {
		c.WriteHeader(http.StatusOK)
	}
	if c.mode != modePass {
		return len(p), nil
	}
	if c.capture {
		if int64(len(c.buf)+len(p)) > c.h.maxObject {
			c.capture, c.buf = false, nil
			c.release()
		} else {
			c.buf = append(c.buf, p...)
		}
	}
	return c.w.Write(p)
}

// Flush sends what was written so far (server-sent events and other streams).
func (c *captureWriter) Flush() {
	if c.mode == modeNone {
		c.WriteHeader(http.StatusOK)
	}
	if c.mode == modePass {
		_ = http.NewResponseController(c.w).Flush()
	}
}

// Unwrap lets http.ResponseController reach the client's writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.w }

// finish completes the exchange after the handler returned: it relays trailers, stores the
// captured response, or answers from the stale entry.
func (c *captureWriter) finish() *store.CacheEntry {
	switch c.mode {
	case modeNotModified:
		return c.revalidated()
	case modeStaleError:
		c.h.serveEntry(c.w, c.r, c.fs.stale, Stale, currentAge(c.fs.stale, c.h.now()))
		return nil
	case modePass:
	default:
		return nil
	}
	if len(c.hdr["Trailer"]) > 0 {
		out := c.w.Header()
		for k, vs := range c.hdr {
			if strings.HasPrefix(k, http.TrailerPrefix) || out[k] == nil {
				out[k] = vs
			}
		}
	}
	if !c.capture {
		return nil
	}
	if cl, err := strconv.ParseInt(c.hdr.Get("Content-Length"), 10, 64); err == nil && cl != int64(len(c.buf)) {
		return nil // truncated
	}
	e := &store.CacheEntry{Status: c.status, Header: c.h.storedHeader(c.hdr), Body: c.buf,
		RequestTime: c.reqTime.UnixNano(), ResponseTime: c.respTime.UnixNano(), Tags: c.tags}
	delete(e.Header, "Content-Length")
	if !c.h.put(c.r, c.k, c.fs.marker, e, c.ttl) {
		return nil
	}
	return e
}

// revalidated refreshes the stale entry with the headers of the origin's 304 (RFC 9111 4.3.4),
// stores it and serves it. It returns the entry only if it was stored: the 304 may have added
// headers that make it this client's alone (Set-Cookie, private), and waiters must not get it.
func (c *captureWriter) revalidated() *store.CacheEntry {
	old := c.fs.stale
	e := &store.CacheEntry{Status: old.Status, Header: old.Header.Clone(), Body: old.Body, Tags: old.Tags,
		Vary: old.Vary, RequestTime: c.reqTime.UnixNano(), ResponseTime: c.respTime.UnixNano()}
	// The stored Date and Age described the old exchange.
	delete(e.Header, "Date")
	delete(e.Header, "Age")
	for k, vs := range c.h.storedHeader(c.hdr) {
		switch k {
		case "Content-Length", "Content-Type", "Content-Encoding", "Content-Range":
			continue
		}
		e.Header[k] = vs
	}
	if tags := tagsOf(c.hdr[c.h.tagHeader]); len(tags) > 0 {
		e.Tags = tags
	}
	stored := false
	if ttl, ok := c.h.storeTTL(e.Status, e.Header, c.restricted, c.reqTime, c.respTime); ok && !c.noStore {
		stored = c.h.set(c.r, c.fs.staleKey, e, ttl)
	}
	c.h.serveEntry(c.w, c.r, e, Revalidated, currentAge(e, c.h.now()))
	if !stored {
		return nil
	}
	return e
}

// put stores e for r: at the primary key, or under a Vary marker when the route keys on
// request headers or the user, or the response varies. It reports whether e can be found.
func (h *handler) put(r *http.Request, k reqKey, marker, e *store.CacheEntry, ttl time.Duration) bool {
	names := varyNames(e.Header["Vary"])
	if k.sec == "" && len(names) == 0 {
		return h.set(r, k.primary, e, ttl)
	}
	if marker == nil || !slices.Equal(marker.Vary, names) {
		marker = &store.CacheEntry{Vary: names, Nonce: newNonce()}
	}
	key, vary := variantKey(k.primary, marker, k.sec, r)
	e.Vary = vary
	okMarker := h.set(r, k.primary, marker, max(ttl, time.Hour))
	return h.set(r, key, e, ttl) && okMarker
}

// set stores e at key and reports whether it was stored.
func (h *handler) set(r *http.Request, key string, e *store.CacheEntry, ttl time.Duration) bool {
	// The client may be gone; the entry is still worth keeping.
	if err := h.store.Set(context.WithoutCancel(r.Context()), key, e, ttl); err != nil {
		h.logger.Debug("cache store failed", "route", h.route, "error", err.Error())
		return false
	}
	return true
}

// refresh revalidates a stale entry in the background (stale-while-revalidate), once per key at
// a time and at most maxBackground per route at once.
func (h *handler) refresh(r *http.Request, info *httpx.Info, k reqKey, key string, e, marker *store.CacheEntry) {
	fk := k.flight() + "\x00refresh"
	f, leader := h.flights.join(fk)
	if !leader {
		return
	}
	select {
	case h.background <- struct{}{}:
	default:
		h.flights.finish(fk, f, nil)
		return
	}
	// The request's Info belongs to its own goroutine: the refresh gets a copy.
	var ni httpx.Info
	if info != nil {
		ni = *info
	}
	ctx, cancel := context.WithTimeout(httpx.WithInfo(context.WithoutCancel(r.Context()), &ni), refreshTimeout)
	out := r.Clone(ctx)
	out.Method, out.Body, out.ContentLength = http.MethodGet, http.NoBody, 0
	delete(out.Header, "If-None-Match")
	delete(out.Header, "If-Modified-Since")
	h.bgWG.Add(1)
	go func() {
		defer h.bgWG.Done()
		defer func() { <-h.background }()
		defer cancel()
		defer h.flights.finish(fk, f, nil)
		defer func() {
			// The proxy aborts a broken body copy with http.ErrAbortHandler; nothing is stored then.
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				h.logger.Error("cache refresh panicked", "route", h.route, "panic", v)
			}
		}()
		h.fetch(discard{hdr: http.Header{}}, out, k, fetchState{stale: e, staleKey: key, marker: marker})
	}()
}

// discard is the ResponseWriter of background refreshes.
type discard struct{ hdr http.Header }

func (d discard) Header() http.Header         { return d.hdr }
func (d discard) Write(p []byte) (int, error) { return len(p), nil }
func (d discard) WriteHeader(int)             {}
