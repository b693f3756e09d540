package tlsconf

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/certs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve accepts TLS connections with cfg until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// A byte after a successful handshake tells the client it was accepted.
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("k"))
				}
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func dial(addr, sni string, roots *tls.Config) (*tls.ConnectionState, error) {
	cfg := roots.Clone()
	cfg.ServerName = sni
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// With TLS 1.3 a rejected client certificate surfaces only after the handshake: the server
	// writes one byte when it accepted the connection.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil || b[0] != 'k' {
		return nil, fmt.Errorf("not accepted: %v", err)
	}
	st := c.ConnectionState()
	return &st, nil
}

func TestSNIRotationAndMTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, "test CA")
	aC, aK := ca.IssueFiles(t, dir, "a", "a.example.com")
	bC, bK := ca.IssueFiles(t, dir, "b", "b.example.com")
	m, err := New(config.ListenerTLS{
		Certificates:   []config.Certificate{{Cert: aC, Key: aK}, {Cert: bC, Key: bK}},
		MinVersion:     "1.2",
		ReloadInterval: config.Dur(30 * time.Millisecond),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr := serve(t, m.TLSConfig())
	client := &tls.Config{RootCAs: ca.Pool()}

	for sni, want := range map[string]string{"a.example.com": "a.example.com", "b.example.com": "b.example.com", "": "a.example.com"} {
		cfg := client.Clone()
		if sni == "" {
			cfg.InsecureSkipVerify = true // no SNI: the default (first) certificate is served
		}
		st, err := dial(addr, sni, cfg)
		if err != nil {
			t.Fatalf("sni %q: %v", sni, err)
		}
		if got := st.PeerCertificates[0].DNSNames[0]; got != want {
			t.Errorf("sni %q served %q, want %q", sni, got, want)
		}
		if st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "h2" {
			t.Errorf("ALPN %q", st.NegotiatedProtocol)
		}
	}

	// Rotate b's certificate on disk: new connections get the new one without a restart.
	old, _ := dial(addr, "b.example.com", client)
	newCert, newKey := ca.Issue(t, "b rotated", []string{"b.example.com"}, false)
	os.WriteFile(bK, newKey, 0o600)
	os.WriteFile(bC, newCert, 0o600)
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := dial(addr, "b.example.com", client)
		if err == nil && st.PeerCertificates[0].SerialNumber.Cmp(old.PeerCertificates[0].SerialNumber) != 0 {
			if st.PeerCertificates[0].Subject.CommonName != "b rotated" {
				t.Fatalf("rotated cert CN %q", st.PeerCertificates[0].Subject.CommonName)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rotated certificate was not picked up")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A broken file keeps the previous certificates serving.
	os.WriteFile(bC, []byte("garbage"), 0o600)
	time.Sleep(150 * time.Millisecond)
	if _, err := dial(addr, "b.example.com", client); err != nil {
		t.Fatalf("a broken cert file took the listener down: %v", err)
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	serverCA := certs.NewCA(t, "server CA")
	clientCA := certs.NewCA(t, "client CA")
	otherCA := certs.NewCA(t, "rogue CA")
	sc, sk := serverCA.IssueFiles(t, dir, "srv", "api.example.com")
	caPath := filepath.Join(dir, "clients.pem")
	os.WriteFile(caPath, clientCA.PEM, 0o600)

	good := clientPair(t, clientCA, "alice")
	rogue := clientPair(t, otherCA, "mallory")
	for _, mode := range []string{"require", "optional"} {
		t.Run(mode, func(t *testing.T) {
			m, err := New(config.ListenerTLS{
				Certificates: []config.Certificate{{Cert: sc, Key: sk}}, MinVersion: "1.3",
				ClientAuth: &config.ClientAuth{CA: []string{caPath}, Mode: mode},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			addr := serve(t, m.TLSConfig())
			base := &tls.Config{RootCAs: serverCA.Pool()}

			withGood := base.Clone()
			withGood.Certificates = []tls.Certificate{good}
			if _, err := dial(addr, "api.example.com", withGood); err != nil {
				t.Errorf("valid client cert rejected: %v", err)
			}
			withRogue := base.Clone()
			// Force sending it: Go's client would otherwise skip a cert the server's CA list
			// does not name.
			withRogue.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &rogue, nil }
			if _, err := dial(addr, "api.example.com", withRogue); err == nil {
				t.Errorf("client cert from an unknown CA accepted")
			}
			_, err = dial(addr, "api.example.com", base)
			if mode == "require" && err == nil {
				t.Errorf("no client cert accepted in require mode")
			}
			if mode == "optional" && err != nil {
				t.Errorf("no client cert rejected in optional mode: %v", err)
			}
		})
	}
}

func clientPair(t *testing.T, ca *certs.CA, cn string) tls.Certificate {
	c, k := ca.Issue(t, cn, nil, true)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	_, err := New(config.ListenerTLS{Certificates: []config.Certificate{{Cert: "/nonexistent.pem", Key: "/nonexistent-key.pem"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent.pem") {
		t.Fatalf("error %v does not name the file", err)
	}
}
