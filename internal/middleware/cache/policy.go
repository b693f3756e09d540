package cache

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// directives are the Cache-Control response directives a shared cache acts on (RFC 9111 5.2.2,
// RFC 5861). Durations are -1 when absent.
type directives struct {
	noStore, noCache, private, public     bool
	mustRevalidate, proxyRevalidate       bool
	maxAge, sMaxAge, swr, sie             time.Duration
	noCacheFields                         []string // qualified no-cache="Set-Cookie": strip these, store the rest
	hasMaxAge, hasSMaxAge, hasSWR, hasSIE bool
}

// parseCacheControl reads every Cache-Control field line. Unknown directives are ignored; a
// malformed delta-seconds makes the response stale at once (RFC 9111 4.2.1 says to treat it as
// invalid; being stale is the safe reading).
func parseCacheControl(values []string) directives {
	var d directives
	for _, line := range values {
		for len(line) > 0 {
			var item string
			item, line = nextDirective(line)
			name, arg, hasArg := strings.Cut(item, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			arg = strings.TrimSpace(arg)
			if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
				arg = arg[1 : len(arg)-1]
			}
			switch name {
			case "no-store":
				d.noStore = true
			case "no-cache":
				if hasArg && arg != "" {
					for _, f := range strings.Split(arg, ",") {
						if f = strings.TrimSpace(f); f != "" {
							d.noCacheFields = append(d.noCacheFields, textproto.CanonicalMIMEHeaderKey(f))
						}
					}
				} else {
					d.noCache = true
				}
			case "private":
				d.private = true
			case "public":
				d.public = true
			case "must-revalidate":
				d.mustRevalidate = true
			case "proxy-revalidate":
				d.proxyRevalidate = true
			case "max-age":
				d.maxAge, d.hasMaxAge = seconds(arg), true
			case "s-maxage":
				d.sMaxAge, d.hasSMaxAge = seconds(arg), true
			case "stale-while-revalidate":
				d.swr, d.hasSWR = seconds(arg), true
			case "stale-if-error":
				d.sie, d.hasSIE = seconds(arg), true
			}
		}
	}
	return d
}

// nextDirective splits off one comma-separated directive, keeping commas inside quotes.
func nextDirective(s string) (string, string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				return s[:i], s[i+1:]
			}
		}
	}
	return s, ""
}

// seconds parses delta-seconds; invalid values are 0 (stale at once), huge ones saturate.
func seconds(s string) time.Duration {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 1 << 62
		}
		return 0
	}
	if n > 1<<31 {
		n = 1 << 31 // RFC 9111 1.2.2: 2^31 stands for "infinity"
	}
	return time.Duration(n) * time.Second
}

// revalidate reports whether a stale copy may never be served without the origin's consent:
// must-revalidate, and for a shared cache also proxy-revalidate and s-maxage (RFC 9111 5.2.2).
func (d *directives) revalidate() bool {
	return d.mustRevalidate || d.proxyRevalidate || d.hasSMaxAge
}

// freshness returns the response's freshness lifetime (RFC 9111 4.2.1) and whether it was
// explicit; otherwise the route's TTL stands in for a heuristic.
func freshness(d *directives, h http.Header, date time.Time, ttl time.Duration) (time.Duration, bool) {
	switch {
	case d.noCache:
		return 0, true
	case d.hasSMaxAge:
		return d.sMaxAge, true
	case d.hasMaxAge:
		return d.maxAge, true
	}
	if vs := h["Expires"]; len(vs) > 0 {
		exp, err := http.ParseTime(vs[0])
		if err != nil {
			return 0, true // an invalid Expires means "already expired"
		}
		return max(0, exp.Sub(date)), true
	}
	return ttl, false
}

// dateOf returns the response's Date, or fallback when it has none or it is invalid.
func dateOf(h http.Header, fallback time.Time) time.Time {
	if vs := h["Date"]; len(vs) > 0 {
		if t, err := http.ParseTime(vs[0]); err == nil {
			return t
		}
	}
	return fallback
}

// currentAge is the entry's age at now (RFC 9111 4.2.3).
func currentAge(e *store.CacheEntry, now time.Time) time.Duration {
	reqT, respT := time.Unix(0, e.RequestTime), time.Unix(0, e.ResponseTime)
	apparent := max(0, respT.Sub(dateOf(e.Header, respT)))
	var ageValue time.Duration
	if vs := e.Header["Age"]; len(vs) > 0 {
		ageValue = seconds(strings.TrimSpace(vs[0]))
	}
	corrected := ageValue + max(0, respT.Sub(reqT))
	return max(apparent, corrected) + max(0, now.Sub(respT))
}

// state is what an entry may be used for at a given time.
type state struct {
	age      time.Duration
	fresh    bool
	swr      bool // stale, but may be served while revalidating in the background
	sie      bool // stale, but may be served if the origin fails
	validate bool // has a validator for a conditional request
}

func (h *handler) stateOf(e *store.CacheEntry, now time.Time) state {
	d := parseCacheControl(e.Header["Cache-Control"])
	respT := time.Unix(0, e.ResponseTime)
	life, _ := freshness(&d, e.Header, dateOf(e.Header, respT), h.ttl)
	st := state{age: currentAge(e, now), validate: hasValidator(e.Header)}
	st.fresh = st.age < life
	if !st.fresh && !d.revalidate() && !d.noCache {
		stale := st.age - life
		st.swr = d.hasSWR && stale < d.swr
		st.sie = d.hasSIE && stale < d.sie
	}
	return st
}

func hasValidator(h http.Header) bool {
	return len(h["Etag"]) > 0 || len(h["Last-Modified"]) > 0
}

// storeTTL decides whether a response is stored and for how long the store keeps it (its
// remaining freshness plus the time it stays useful stale). ok is false when the response must
// not be, or is not worth being, stored.
func (h *handler) storeTTL(status int, hdr http.Header, restricted bool, reqT, respT time.Time) (ttl time.Duration, ok bool) {
	if status < 0 || status >= len(h.statuses) || !h.statuses[status] {
		return 0, false
	}
	d := parseCacheControl(hdr["Cache-Control"])
	if d.noStore || d.private {
		return 0, false
	}
	if restricted && !d.public && !d.hasSMaxAge && !d.mustRevalidate {
		return 0, false // RFC 9111 3.5
	}
	for _, v := range hdr["Vary"] {
		if strings.Contains(v, "*") {
			return 0, false
		}
	}
	if len(hdr["Trailer"]) > 0 {
		return 0, false
	}
	if len(hdr["Set-Cookie"]) > 0 && !slices.Contains(d.noCacheFields, "Set-Cookie") {
		return 0, false // never hand one client's cookie to another
	}
	life, explicit := freshness(&d, hdr, dateOf(hdr, respT), h.ttl)
	if !explicit && h.ttl == 0 {
		return 0, false
	}
	e := store.CacheEntry{Header: hdr, RequestTime: reqT.UnixNano(), ResponseTime: respT.UnixNano()}
	remaining := life - currentAge(&e, respT)
	var keep time.Duration
	if !d.revalidate() && !d.noCache {
		keep = max(d.swr, d.sie)
	}
	if hasValidator(hdr) {
		keep = max(keep, h.keepStale)
	}
	ttl = max(0, remaining) + keep
	return ttl, ttl > 0
}

// storedHeader copies the response headers worth storing: the gateway's own per-request
// headers, the tag header and the fields a qualified no-cache names are left out.
func (h *handler) storedHeader(src http.Header) http.Header {
	d := parseCacheControl(src["Cache-Control"])
	out := make(http.Header, len(src))
	for k, vs := range src {
		switch k {
		case "X-Request-Id", h.tagHeader, h.xcache, "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		}
		if slices.Contains(d.noCacheFields, k) {
			continue
		}
		out[k] = slices.Clone(vs)
	}
	return out
}

// tagsOf splits the tag header's values on spaces and commas.
func tagsOf(vs []string) []string {
	var tags []string
	for _, v := range vs {
		for _, t := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
			if len(t) <= 256 && !slices.Contains(tags, t) && len(tags) < 64 {
				tags = append(tags, t)
			}
		}
	}
	return tags
}

// varyNames returns the canonical, sorted, de-duplicated header names of Vary.
func varyNames(vs []string) []string {
	var names []string
	for _, v := range vs {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				names = append(names, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// notModified reports whether the client's conditional headers match the stored response, so
// that it is answered 304 (RFC 9110 13.1.2, 13.1.3; If-None-Match wins over If-Modified-Since).
func notModified(r *http.Request, h http.Header) bool {
	if inm := r.Header["If-None-Match"]; len(inm) > 0 {
		etag := strings.TrimPrefix(h.Get("Etag"), "W/")
		if etag == "" {
			return false
		}
		for _, line := range inm {
			for _, t := range strings.Split(line, ",") {
				t = strings.TrimSpace(t)
				if t == "*" || strings.TrimPrefix(t, "W/") == etag {
					return true
				}
			}
		}
		return false
	}
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" {
		return false
	}
	since, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	if err != nil {
		return false
	}
	return !lm.After(since)
}
