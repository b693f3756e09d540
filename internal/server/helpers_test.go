package server

import (
	"context"
	"encoding/json"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a goroutine-safe bytes.Buffer for capturing logs.
type syncBuffer = syncbuf.Buffer

// gateway is a Server under test listening on a free loopback port.
type gateway struct {
	t      *testing.T
	srv    *Server
	base   string
	addr   string
	logs   *syncBuffer
	access *syncBuffer
	env    map[string]string
}

// echoGateway starts a gateway with one service, "b", an echo backend, and rest after it
// (its routes and anything else).
func echoGateway(t *testing.T, rest string) *gateway {
	t.Helper()
	be := newEcho(t, "b")
	return startGateway(t, "version: 1\nlisteners: [{ name: public, address: \"${LISTEN}\" }]\n"+
		"services: [{ name: b, targets: [{ url: \"http://${B}\" }] }]\n"+rest, map[string]string{"B": hostPort(be)})
}

// startGateway loads yaml (with ${NAME} from env; LISTEN is set to a free port) and starts it.
func startGateway(t *testing.T, yaml string, env map[string]string) *gateway {
	t.Helper()
	g, _ := startGatewayWith(t, yaml, env, nil)
	return g
}

// startGatewayWith is startGateway with the server options edited by mod (may be nil). The
// config is also written to a file, set as Options.ConfigPath, so ReloadFile works.
func startGatewayWith(t *testing.T, yaml string, env map[string]string, mod func(*Options)) (*gateway, *config.Config) {
	t.Helper()
	g := &gateway{t: t, logs: &syncBuffer{}, access: &syncBuffer{}, env: map[string]string{"LISTEN": "127.0.0.1:0"}}
	for k, v := range env {
		g.env[k] = v
	}
	cfg := g.load(yaml)
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := Options{Logger: logger, AccessLogWriter: g.access, LookupEnv: g.lookup, ConfigPath: path}
	if mod != nil {
		mod(&opts)
	}
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	g.srv = srv
	g.addr = srv.Addrs()["public"]
	g.base = "http://" + g.addr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		http.DefaultClient.CloseIdleConnections()
	})
	return g, cfg
}

func (g *gateway) lookup(name string) (string, bool) {
	v, ok := g.env[name]
	return v, ok
}

func (g *gateway) load(yaml string) *config.Config {
	g.t.Helper()
	cfg, err := config.Load("test.yaml", []byte(yaml), g.lookup)
	if err != nil {
		g.t.Fatalf("config: %v", err)
	}
	return cfg
}

// reload applies a new config in place.
func (g *gateway) reload(yaml string) error {
	cfg, err := config.Load("test.yaml", []byte(yaml), g.lookup)
	if err != nil {
		return err
	}
	// Keep the already bound listener address.
	for i := range cfg.Listeners {
		if cfg.Listeners[i].Name == "public" {
			cfg.Listeners[i].Address = g.srv.current.Load().Config.Listeners[0].Address
		}
	}
	return g.srv.Reload(cfg)
}

func (g *gateway) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}

func (g *gateway) get(t *testing.T, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return g.do(t, req)
}

// raw sends bytes on a new TCP connection and returns what the gateway answered.
func (g *gateway) raw(t *testing.T, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", g.addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

// echo is a backend that answers with what it received as JSON.
type echoed struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	RawPath    string              `json:"raw_path"`
	RequestURI string              `json:"request_uri"`
	Query      string              `json:"query"`
	Host       string              `json:"host"`
	Header     map[string][]string `json:"header"`
	Body       string              `json:"body"`
	Backend    string              `json:"backend"`
	RemoteAddr string              `json:"remote_addr"`
}

func newEcho(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend", name)
		_ = json.NewEncoder(w).Encode(echoed{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RequestURI: r.RequestURI,
			Query: r.URL.RawQuery, Host: r.Host, Header: r.Header, Body: string(body), Backend: name,
			RemoteAddr: r.RemoteAddr,
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func decodeEcho(t *testing.T, body string) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("backend answer is not echo JSON: %v\n%s", err, body)
	}
	return e
}

type apiError struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func decodeError(t *testing.T, resp *http.Response, body string) apiError {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q, want application/json; body %q", ct, body)
	}
	var e apiError
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, body)
	}
	if e.RequestID == "" || e.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("error request_id %q does not match X-Request-Id %q", e.RequestID, resp.Header.Get("X-Request-Id"))
	}
	return e
}

func hostPort(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
