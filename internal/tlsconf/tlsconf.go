// Package tlsconf builds the server-side TLS configuration of a listener: certificates chosen
// by SNI and re-read when their files change (no restart), a modern protocol and cipher floor,
// HTTP/2 through ALPN, and optional client-certificate verification (mutual TLS).
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Manager holds a listener's certificates and keeps them current.
type Manager struct {
	cfg    config.ListenerTLS
	logger *slog.Logger
	certs  atomic.Pointer[certSet]
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

type certSet struct {
	certs   []*tls.Certificate
	stamps  []fileStamp
	clients *x509.CertPool
}

type fileStamp struct {
	path string
	mod  time.Time
	size int64
}

// New loads the certificates (an error names the file that failed) and starts watching them.
// Call Close to stop watching.
func New(cfg config.ListenerTLS, logger *slog.Logger) (*Manager, error) {
	if logger == nil {
		logger = slog.Default()
	}
	set, err := load(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{cfg: cfg, logger: logger, cancel: cancel, done: make(chan struct{})}
	m.certs.Store(set)
	interval := cfg.ReloadInterval.Duration
	if interval <= 0 {
		interval = 2 * time.Second
	}
	go m.watch(ctx, interval)
	return m, nil
}

func load(cfg config.ListenerTLS) (*certSet, error) {
	set := &certSet{}
	for _, c := range cfg.Certificates {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("tls certificate %s / %s: %w", c.Cert, c.Key, err)
		}
		if pair.Leaf == nil && len(pair.Certificate) > 0 {
			pair.Leaf, _ = x509.ParseCertificate(pair.Certificate[0])
		}
		set.certs = append(set.certs, &pair)
		for _, p := range []string{c.Cert, c.Key} {
			st, err := stamp(p)
			if err != nil {
				return nil, err
			}
			set.stamps = append(set.stamps, st)
		}
	}
	if len(set.certs) == 0 {
		return nil, errors.New("tls: no certificates")
	}
	if ca := cfg.ClientAuth; ca != nil {
		set.clients = x509.NewCertPool()
		for _, p := range ca.CA {
			pem, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("tls client CA: %w", err)
			}
			if !set.clients.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls client CA %s: no PEM certificates found", p)
			}
			st, err := stamp(p)
			if err != nil {
				return nil, err
			}
			set.stamps = append(set.stamps, st)
		}
	}
	return set, nil
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tls: %w", err)
	}
	return fileStamp{path: path, mod: fi.ModTime(), size: fi.Size()}, nil
}

// watch re-reads the files when any of them changed. Polling (not inotify) follows the
// symlink swaps that secret mounts use, and costs a few stat calls per interval.
func (m *Manager) watch(ctx context.Context, interval time.Duration) {
	defer close(m.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	seen := m.certs.Load().stamps
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := make([]fileStamp, len(seen))
		changed := false
		for i, s := range seen {
			st, err := stamp(s.path)
			if err != nil {
				st = fileStamp{path: s.path}
			}
			now[i] = st
			if !st.mod.Equal(s.mod) || st.size != s.size {
				changed = true
			}
		}
		if !changed {
			continue
		}
		seen = now
		set, err := load(m.cfg)
		if err != nil {
			// A half-written file or a bad new cert: keep serving the old ones; try again when
			// the files change next.
			m.logger.Warn("tls certificates changed but could not be loaded; keeping the previous ones", "error", err.Error())
			continue
		}
		seen = set.stamps
		m.certs.Store(set)
		m.logger.Info("tls certificates reloaded", "count", len(set.certs))
	}
}

// Close stops watching the files.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.cancel()
		<-m.done
	})
	return nil
}

// Modern cipher suites for TLS 1.2: AEAD with forward secrecy only (TLS 1.3 suites are fixed).
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig returns the listener's tls.Config. Certificates (and client CAs) are looked up per
// handshake, so reloads apply to new connections at once.
func (m *Manager) TLSConfig() *tls.Config {
	minVersion := uint16(tls.VersionTLS12)
	if m.cfg.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	base := &tls.Config{
		MinVersion:     minVersion,
		CipherSuites:   cipherSuites,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: m.getCertificate,
	}
	if ca := m.cfg.ClientAuth; ca != nil {
		mode := tls.RequireAndVerifyClientCert
		if ca.Mode == "optional" {
			mode = tls.VerifyClientCertIfGiven
		}
		// Per-handshake config so a reloaded client CA applies too.
		base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := base.Clone()
			c.GetConfigForClient = nil
			c.ClientAuth = mode
			c.ClientCAs = m.certs.Load().clients
			return c, nil
		}
	}
	return base
}

// getCertificate picks the first certificate valid for the client's SNI name, else the first.
func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := m.certs.Load()
	if hello.ServerName != "" && len(set.certs) > 1 {
		for _, c := range set.certs {
			if c.Leaf != nil && c.Leaf.VerifyHostname(hello.ServerName) == nil {
				return c, nil
			}
		}
	}
	return set.certs[0], nil
}
