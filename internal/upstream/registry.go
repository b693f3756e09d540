package upstream

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
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
}

// NewTransport builds the keep-alive HTTP transport for one pool.
func NewTransport(s TransportSettings) *http.Transport {
	d := &net.Dialer{Timeout: s.Connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
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
	}
}

// Registry holds the upstream resources shared across reloads.
type Registry struct {
	// Transports are the keep-alive pools, keyed by their settings.
	Transports *Shared[TransportSettings, *http.Transport]
	// Targets are a service's target sets (with their in-flight and health state), keyed by the
	// service's name and target list.
	Targets *Shared[string, []*Target]
	// Resources are other long-lived values of middleware (JWKS caches, Redis clients, limiter
	// stores), keyed by the owning package and their normalized config.
	Resources *Shared[string, io.Closer]
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{
		Transports: NewShared[TransportSettings](func(t *http.Transport) { t.CloseIdleConnections() }),
		Targets:    NewShared[string, []*Target](nil),
		Resources:  NewShared[string, io.Closer](func(c io.Closer) { _ = c.Close() }),
	}
}
