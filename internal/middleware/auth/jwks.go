package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

// maxJWKSBytes bounds a JWK Set or discovery document read from an identity provider.
const maxJWKSBytes = 1 << 20

// maxJWKSKeys bounds how many keys of one JWK Set are kept.
const maxJWKSKeys = 64

// vkey is one verification key.
type vkey struct {
	kid string
	alg string // the JWK's "alg", "" when it does not name one
	key crypto.PublicKey
}

type keySet struct {
	byKID map[string][]vkey
	all   []vkey
}

// jwksSource keeps an issuer's JWK Set: fetched at start, refreshed in the background, and
// fetched again (rate limited, one fetch at a time shared by every waiting request) when a token
// names a key ID it does not know. The library keyfunc/v3 does this too, but its unknown-kid path
// blocks each request on a rate limiter for up to a minute and runs the fetch on the request's
// context; a gateway needs "don't wait, answer 401" under a flood of made-up key IDs.
type jwksSource struct {
	name       string
	discovery  string
	client     *http.Client
	timeout    time.Duration
	refresh    time.Duration
	minRefetch time.Duration
	logger     *slog.Logger

	keys atomic.Pointer[keySet]
	// fetches counts JWK Set requests (tests and logs).
	fetches atomic.Int64

	mu          sync.Mutex
	closed      bool
	url         string // resolved JWK Set URL ("" until discovery succeeded)
	lastAttempt time.Time
	inflight    chan struct{} // closed when the running fetch ends; nil when none runs

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type jwksOptions struct {
	name, jwksURL, discovery     string
	timeout, refresh, minRefetch time.Duration
	logger                       *slog.Logger
}

func newJWKSSource(o jwksOptions) *jwksSource {
	ctx, cancel := context.WithCancel(context.Background())
	s := &jwksSource{
		name: o.name, discovery: strings.TrimSuffix(o.discovery, "/"), url: o.jwksURL,
		timeout: o.timeout, refresh: o.refresh, minRefetch: o.minRefetch, logger: o.logger,
		ctx: ctx, cancel: cancel,
		client: &http.Client{
			Timeout: o.timeout,
			Transport: &http.Transport{
				Proxy:               http.ProxyFromEnvironment,
				TLSHandshakeTimeout: o.timeout,
				MaxIdleConnsPerHost: 2,
				IdleConnTimeout:     90 * time.Second,
			},
			// A redirect to another host could hand out keys we never meant to trust.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	s.keys.Store(&keySet{byKID: map[string][]vkey{}})
	// The first fetch runs now, so tokens verify from the first request; a failure is logged
	// and retried in the background (an identity provider outage must not stop the gateway).
	if err := s.fetchOnce(); err != nil {
		s.logger.Warn("jwks fetch failed; retrying in the background", "issuer", s.name, "error", err.Error())
	}
	s.wg.Add(1)
	go s.loop()
	return s
}

// Close stops the background refresh and waits for it.
func (s *jwksSource) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.client.CloseIdleConnections()
	return nil
}

func (s *jwksSource) loop() {
	defer s.wg.Done()
	wait := s.refresh
	if len(s.keys.Load().all) == 0 {
		wait = s.minRefetch
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		wait = s.refresh
		if err := s.fetchOnce(); err != nil {
			s.logger.Warn("jwks refresh failed; keeping the previous keys", "issuer", s.name, "error", err.Error())
			wait = s.minRefetch
		}
		t.Reset(wait)
	}
}

// fetchOnce runs one fetch, or joins the one already running.
func (s *jwksSource) fetchOnce() error {
	s.mu.Lock()
	if ch := s.inflight; ch != nil {
		s.mu.Unlock()
		<-ch
		return nil
	}
	ch := make(chan struct{})
	s.inflight = ch
	s.lastAttempt = time.Now()
	s.mu.Unlock()
	err := s.fetch()
	s.mu.Lock()
	s.inflight = nil
	s.mu.Unlock()
	close(ch)
	return err
}

// refetchUnknown is called when a token names an unknown kid. It starts a fetch unless one ran
// less than minRefetch ago, and waits for the running fetch at most until ctx ends. It never
// blocks on the rate limit: a token with a made-up kid is refused at once.
func (s *jwksSource) refetchUnknown(ctx context.Context) {
	s.mu.Lock()
	ch := s.inflight
	if ch == nil {
		if s.closed || time.Since(s.lastAttempt) < s.minRefetch {
			s.mu.Unlock()
			return
		}
		ch = make(chan struct{})
		s.inflight = ch
		s.lastAttempt = time.Now()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.fetch()
			s.mu.Lock()
			s.inflight = nil
			s.mu.Unlock()
			close(ch)
			if err != nil {
				s.logger.Warn("jwks refetch for an unknown key ID failed", "issuer", s.name, "error", err.Error())
			}
		}()
	}
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

func (s *jwksSource) fetch() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	s.mu.Lock()
	u := s.url
	s.mu.Unlock()
	if u == "" {
		var err error
		if u, err = s.discover(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		s.url = u
		s.mu.Unlock()
	}
	s.fetches.Add(1)
	var set jwkset.JWKSMarshal
	if err := s.getJSON(ctx, u, &set); err != nil {
		return fmt.Errorf("jwks fetch: %w", err)
	}
	ks := &keySet{byKID: map[string][]vkey{}}
	skipped := 0
	for _, m := range set.Keys {
		if len(ks.all) >= maxJWKSKeys {
			break
		}
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		// Keys for HMAC ("oct") are secrets; one published in a JWK Set is not one. Only public
		// keys are taken from a JWK Set.
		if m.KTY == jwkset.KtyOct {
			skipped++
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			skipped++
			continue
		}
		k := jwk.Key()
		if pk, ok := k.(interface{ Public() crypto.PublicKey }); ok {
			k = pk.Public()
		}
		if !usableKey(k) {
			skipped++
			continue
		}
		v := vkey{kid: m.KID, alg: m.ALG.String(), key: k}
		ks.all = append(ks.all, v)
		if v.kid != "" {
			ks.byKID[v.kid] = append(ks.byKID[v.kid], v)
		}
	}
	if len(ks.all) == 0 {
		return fmt.Errorf("jwks fetch: no usable signature keys in %s (%d skipped)", u, skipped)
	}
	s.keys.Store(ks)
	return nil
}

func (s *jwksSource) discover(ctx context.Context) (string, error) {
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := s.getJSON(ctx, s.discovery+"/.well-known/openid-configuration", &doc); err != nil {
		return "", fmt.Errorf("openid discovery: %w", err)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return "", fmt.Errorf("openid discovery: jwks_uri %q is not an https URL", doc.JWKSURI)
	}
	return doc.JWKSURI, nil
}

func isLoopback(h string) bool {
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

func (s *jwksSource) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("GET %s: document larger than %d bytes", u, maxJWKSBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// lookup returns the keys that may verify a token with this kid and alg, fetching the JWK Set
// again (rate limited) when the kid is unknown.
func (s *jwksSource) lookup(ctx context.Context, kid, alg string) []vkey {
	if kid == "" {
		return filterKeys(s.keys.Load().all, alg)
	}
	if ks := filterKeys(s.keys.Load().byKID[kid], alg); len(ks) > 0 {
		return ks
	}
	s.refetchUnknown(ctx)
	return filterKeys(s.keys.Load().byKID[kid], alg)
}

func filterKeys(keys []vkey, alg string) []vkey {
	var out []vkey
	for _, k := range keys {
		if (k.alg == "" || k.alg == alg) && compatible(alg, k.key) {
			out = append(out, k)
		}
	}
	return out
}

func usableKey(k crypto.PublicKey) bool {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() >= 2048
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return true
	}
	return false
}

// compatible reports whether key can verify alg. golang-jwt checks key types as well; checking
// here too keeps algorithm confusion out even if a library default ever changed.
func compatible(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256() || alg == "ES384" && k.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

var errNoKey = errors.New("no key can verify this token")
