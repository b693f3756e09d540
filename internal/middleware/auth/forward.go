package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// maxDenyBody bounds the auth service's 401/403 body relayed to the client.
const maxDenyBody = 64 << 10

// decision is the auth service's answer to one credential.
type decision struct {
	allow   bool
	status  int         // 401 or 403 when denied
	headers http.Header // response_headers to copy upstream (allow), WWW-Authenticate (deny)
	subject string
	body    []byte // deny body, when return_deny_body
	ctype   string
}

// forwardAuth calls one auth service and caches its decisions. It is a shared resource keyed by
// the normalized forward_auth config, so its keep-alive connections and decision cache survive
// reloads.
type forwardAuth struct {
	cfg     config.ForwardAuthPlugin
	reqHdr  []string
	respHdr []string
	client  *http.Client
	cache   *ttlCache[*decision]
	ttl     time.Duration
	calls   atomic.Int64
	now     func() time.Time
}

func forwardKey(cfg *config.ForwardAuthPlugin) string {
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(b)
	return "auth/forward|" + cfg.URL + "|" + hex.EncodeToString(sum[:])
}

func newForwardAuth(cfg config.ForwardAuthPlugin) *forwardAuth {
	f := &forwardAuth{
		cfg: cfg, now: time.Now,
		client: &http.Client{
			Timeout: cfg.Timeout.Duration,
			Transport: &http.Transport{
				Proxy:                 nil,
				TLSHandshakeTimeout:   cfg.Timeout.Duration,
				ResponseHeaderTimeout: cfg.Timeout.Duration,
				MaxIdleConnsPerHost:   64,
				IdleConnTimeout:       90 * time.Second,
			},
			// A redirect is the auth service's answer, not something to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	for _, h := range cfg.RequestHeaders {
		f.reqHdr = append(f.reqHdr, textproto.CanonicalMIMEHeaderKey(h))
	}
	for _, h := range cfg.ResponseHeaders {
		f.respHdr = append(f.respHdr, textproto.CanonicalMIMEHeaderKey(h))
	}
	if cfg.CacheTTL.Duration > 0 {
		f.cache = newTTLCache[*decision](cfg.CacheMaxEntries)
		f.ttl = cfg.CacheTTL.Duration
	}
	return f
}

// Close drops the idle connections to the auth service.
func (f *forwardAuth) Close() error {
	f.client.CloseIdleConnections()
	return nil
}

// credentialKey hashes the request_headers values: the credential a decision is cached under.
func (f *forwardAuth) credentialKey(r *http.Request) cacheKey {
	h := sha256.New()
	for _, name := range f.reqHdr {
		h.Write([]byte(name))
		for _, v := range r.Header[name] {
			h.Write([]byte{0})
			h.Write([]byte(v))
		}
		h.Write([]byte{1})
	}
	var k cacheKey
	h.Sum(k[:0])
	return k
}

// check asks the auth service (or the cache) about r.
func (f *forwardAuth) check(r *http.Request, info *httpx.Info) (*decision, error) {
	var key cacheKey
	if f.cache != nil {
		key = f.credentialKey(r)
		if d, ok := f.cache.get(key, f.now()); ok {
			return d, nil
		}
	}
	d, err := f.call(r, info)
	if err != nil {
		return nil, err
	}
	if f.cache != nil {
		now := f.now()
		f.cache.put(key, d, now.Add(f.ttl), now)
	}
	return d, nil
}

func (f *forwardAuth) call(r *http.Request, info *httpx.Info) (*decision, error) {
	f.calls.Add(1)
	ctx, cancel := context.WithTimeout(r.Context(), f.cfg.Timeout.Duration)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("forward auth: %w", err)
	}
	for _, name := range f.reqHdr {
		if vs := r.Header[name]; len(vs) > 0 {
			req.Header[name] = append([]string(nil), vs...)
		}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	req.Header.Set("X-Forwarded-Method", r.Method)
	// The auth service sees the normalized path the route was chosen by, not the client's
	// spelling of it: "/public/../admin" must not be judged as something else than "/admin".
	uri := r.RequestURI
	if info != nil && info.Path != "" {
		uri = info.Path
		if r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
	}
	req.Header.Set("X-Forwarded-Uri", uri)
	req.Header.Set("X-Forwarded-Host", r.Host)
	req.Header.Set("X-Forwarded-Proto", proto)
	if info != nil {
		if info.ClientIP.IsValid() {
			req.Header.Set("X-Forwarded-For", info.ClientIP.String())
			req.Header.Set("X-Real-Ip", info.ClientIP.String())
		}
		req.Header.Set("X-Request-Id", info.RequestID)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("forward auth: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDenyBody))
		d := &decision{allow: true, headers: http.Header{}}
		for _, name := range f.respHdr {
			if vs := resp.Header[name]; len(vs) > 0 {
				d.headers[name] = append([]string(nil), vs...)
			}
		}
		d.subject = resp.Header.Get(f.cfg.SubjectHeader)
		return d, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		d := &decision{status: resp.StatusCode, headers: http.Header{}}
		if vs := resp.Header["Www-Authenticate"]; len(vs) > 0 {
			d.headers["Www-Authenticate"] = append([]string(nil), vs...)
		}
		if f.cfg.ReturnDenyBody {
			b, err := io.ReadAll(io.LimitReader(resp.Body, maxDenyBody+1))
			if err != nil {
				return nil, fmt.Errorf("forward auth: read deny body: %w", err)
			}
			if len(b) > maxDenyBody {
				b = b[:maxDenyBody]
			}
			d.body, d.ctype = b, resp.Header.Get("Content-Type")
		} else {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDenyBody))
		}
		return d, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return nil, fmt.Errorf("forward auth: unexpected status %d", resp.StatusCode)
}
