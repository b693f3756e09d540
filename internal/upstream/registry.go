package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream/h1"
)

// Shared is a reference-counted set of long-lived values keyed by their normalized config.
// Runtimes acquire what they need when compiled and release it when retired, so a value whose
// config did not change survives a reload, and the last user closes it.
type Shared[K comparable, V any] struct {
	mu      sync.Mutex
	entries map[K]*sharedEntry[V]
	close   func(V)
}

type sharedEntry[V any] struct {
	v    V
	refs int
}

// NewShared returns an empty Shared whose values are passed to closeFn when their last user
// releases them (closeFn may be nil).
func NewShared[K comparable, V any](closeFn func(V)) *Shared[K, V] {
	return &Shared[K, V]{entries: map[K]*sharedEntry[V]{}, close: closeFn}
}

// Acquire returns the value for key, building it if absent, and a release function that must be
// called exactly once when the caller no longer needs it.
func (s *Shared[K, V]) Acquire(key K, build func() (V, error)) (V, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		v, err := build()
		if err != nil {
			var zero V
			return zero, func() {}, err
		}
		e = &sharedEntry[V]{v: v}
		s.entries[key] = e
	}
	e.refs++
	var once sync.Once
	return e.v, func() { once.Do(func() { s.release(key, e) }) }, nil
}

func (s *Shared[K, V]) release(key K, e *sharedEntry[V]) {
	s.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && s.entries[key] == e {
		delete(s.entries, key)
	}
	s.mu.Unlock()
	if last && s.close != nil {
		s.close(e.v)
	}
}

// Len reports how many values are alive.
func (s *Shared[K, V]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// TransportSettings is everything that shapes a connection pool. Two routes of one service with
// the same effective settings share one pool.
type TransportSettings struct {
	Service          string
	Connect          time.Duration
	ResponseHeader   time.Duration
	IdleTimeout      time.Duration
	MaxIdlePerTarget int
	MaxPerTarget     int
	// Protocol is spoken to the targets: "http1" or "" (HTTP/1.1, or HTTP/2 when an https
	// target offers it through ALPN), "h2c" (cleartext HTTP/2 with prior knowledge, as gRPC
	// servers expect) or "h2" (HTTP/2 over TLS only).
	Protocol string
	// TLS configures https targets (zero: system roots, SNI from the target URL).
	TLS TLSSettings
}

// TLSSettings is the client TLS of a pool, in comparable form so pools can be keyed by it.
type TLSSettings struct {
	// CAFiles lists PEM CA files, joined with "\n"; empty: the system roots.
	CAFiles            string
	ServerName         string
	CertFile, KeyFile  string
	InsecureSkipVerify bool
}

// config builds the tls.Config (nil when nothing is set).
func (t TLSSettings) config() (*tls.Config, error) {
	if t == (TLSSettings{}) {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFiles != "" {
		pool := x509.NewCertPool()
		for _, f := range strings.Split(t.CAFiles, "\n") {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("upstream tls ca: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("upstream tls ca %s: no PEM certificates found", f)
			}
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("upstream tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// Transport is one pool of upstream connections: an http.RoundTripper whose idle connections
// are closed when the last Runtime using it is retired.
type Transport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// NewTransport builds the keep-alive transport for one pool. For HTTP/1.1 services ("http1" or
// "") it is an h1.Transport, which sends plain-HTTP requests on the caller's goroutine and hands
// https targets, upgrades and large request bodies to the stdlib Transport built by
// NewStdTransport; h2c and h2 services get the stdlib Transport alone.
func NewTransport(s TransportSettings) (Transport, error) {
	std, err := NewStdTransport(s)
	if err != nil {
		return nil, err
	}
	if s.Protocol != "" && s.Protocol != "http1" {
		return std, nil
	}
	t, err := h1.New(h1.Options{
		ConnectTimeout:        s.Connect,
		ResponseHeaderTimeout: s.ResponseHeader,
		IdleTimeout:           s.IdleTimeout,
		MaxIdlePerTarget:      s.MaxIdlePerTarget,
		MaxPerTarget:          s.MaxPerTarget,
		Fallback:              std,
	})
	if err != nil {
		return std, nil // unreachable: the fallback is set
	}
	return t, nil
}

// NewStdTransport builds net/http's keep-alive Transport for one pool.
func NewStdTransport(s TransportSettings) (*http.Transport, error) {
	tlsConfig, err := s.TLS.config()
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: s.Connect, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 nil, // never honour HTTP_PROXY for upstream calls
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   s.Connect,
		ResponseHeaderTimeout: s.ResponseHeader,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       s.IdleTimeout,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   s.MaxIdlePerTarget,
		MaxConnsPerHost:       s.MaxPerTarget,
		// The proxy forwards the client's Accept-Encoding untouched and must not decode bodies.
		DisableCompression: true,
		TLSClientConfig:    tlsConfig,
	}
	switch s.Protocol {
	case "h2c":
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
	case "h2":
		var p http.Protocols
		p.SetHTTP2(true)
		t.Protocols = &p
	}
	return t, nil
}

// Registry holds the upstream resources shared across reloads.
type Registry struct {
	// Transports are the keep-alive pools, keyed by their settings.
	Transports *Shared[TransportSettings, Transport]
	// Targets are a service's target sets (with their in-flight and health state), keyed by the
	// service's name and target list.
	Targets *Shared[string, []*Target]
	// Resources are other long-lived values of middleware (JWKS caches, Redis clients, limiter
	// stores), keyed by the owning package and their normalized config.
	Resources *Shared[string, io.Closer]

	// states are the services' breakers, health checkers and retry budgets, keyed by the
	// normalized service config (see AcquireService).
	states *Shared[string, *serviceState]
	mu     sync.Mutex
	// current is the most recently acquired state of each service name, for Snapshot.
	current map[string]*serviceState
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	r := &Registry{
		Transports: NewShared[TransportSettings](func(t Transport) { t.CloseIdleConnections() }),
		Targets:    NewShared[string, []*Target](nil),
		Resources:  NewShared[string, io.Closer](func(c io.Closer) { _ = c.Close() }),
		current:    map[string]*serviceState{},
	}
	r.states = NewShared[string](func(st *serviceState) {
		r.mu.Lock()
		if r.current[st.name] == st {
			delete(r.current, st.name)
		}
		r.mu.Unlock()
		st.Close() // stops the health checker outside the lock
	})
	return r
}

// AcquireService builds the Service of one Runtime. Its long-lived state (circuit breakers,
// active health checker, retry budget) is shared with every other Runtime holding a service of
// the same name, Targets and resilience settings, so it survives reloads that leave the service
// alone; the release function must be called exactly once, and the last release stops the
// health checker. cfg.Targets should come from Targets, so Target state is shared the same way.
func (r *Registry) AcquireService(cfg ServiceConfig) (*Service, func(), error) {
	if len(cfg.Targets) == 0 {
		return nil, func() {}, errors.New("service: no targets")
	}
	st, release, err := r.states.Acquire(stateKey(&cfg), func() (*serviceState, error) {
		return newServiceState(&cfg)
	})
	if err != nil {
		return nil, release, err
	}
	s, err := buildService(&cfg, st)
	if err != nil {
		release()
		return nil, func() {}, err
	}
	r.mu.Lock()
	r.current[cfg.Name] = st
	r.mu.Unlock()
	return s, release, nil
}

// Snapshot returns the state of every live service, sorted by name: breaker state, target
// health, in-flight counts and ejections. During a reload a service's state is the one of the
// most recently compiled Runtime. It is what the admin API and metrics read.
func (r *Registry) Snapshot() []ServiceState {
	r.mu.Lock()
	states := make([]*serviceState, 0, len(r.current))
	for _, st := range r.current {
		states = append(states, st)
	}
	r.mu.Unlock()
	out := make([]ServiceState, len(states))
	for i, st := range states {
		out[i] = st.snapshot()
	}
	slices.SortFunc(out, func(a, b ServiceState) int { return strings.Compare(a.Name, b.Name) })
	return out
}
