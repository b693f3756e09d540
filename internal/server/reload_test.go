package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func reloadYAML(tag string, extra string) string {
	return fmt.Sprintf(`
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - name: a
    targets: [{ url: "http://${A}" }]
routes:
  - name: main
    match: { path: /** }
    service: a
    response_headers: { set: { X-Config: %s } }
%s`, tag, extra)
}

func TestReloadSwapsAndRejectsInvalidConfig(t *testing.T) {
	a := newEcho(t, "a")
	g := startGateway(t, reloadYAML("one", ""), map[string]string{"A": hostPort(a)})
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	g.srv.opts.ConfigPath = path
	g.srv.opts.LookupEnv = g.lookup

	resp, _ := g.get(t, "/x")
	if resp.Header.Get("X-Config") != "one" {
		t.Fatalf("X-Config %q", resp.Header.Get("X-Config"))
	}
	// A valid new config with an extra route.
	if err := os.WriteFile(path, []byte(reloadYAML("two", `  - name: exact
    match: { path: /exact }
    service: a
    response_headers: { set: { X-Route: exact } }
`)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.ReloadFile(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	resp, _ = g.get(t, "/exact")
	if resp.Header.Get("X-Route") != "exact" {
		t.Fatalf("new route not active: %v", resp.Header)
	}
	if resp, _ = g.get(t, "/x"); resp.Header.Get("X-Config") != "two" {
		t.Fatalf("new config not active: %v", resp.Header)
	}
	// An invalid config is rejected whole; the previous one keeps serving.
	bad := strings.Replace(reloadYAML("three", ""), "service: a", "service: missing", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err := g.srv.ReloadFile()
	if err == nil || !strings.Contains(err.Error(), `routes[0].service: unknown service "missing"`) {
		t.Fatalf("reload error %v, want the located validation error", err)
	}
	resp, _ = g.get(t, "/x")
	if resp.StatusCode != 200 || resp.Header.Get("X-Config") != "two" {
		t.Fatalf("old config not kept after a rejected reload: %d %v", resp.StatusCode, resp.Header)
	}
	ev := g.srv.Reloads()
	if len(ev) != 2 || !ev[0].OK || ev[1].OK || ev[1].Error == "" {
		t.Fatalf("reload history %+v", ev)
	}
	if !strings.Contains(g.logs.String(), "config rejected") {
		t.Error("rejected reload was not logged")
	}
}

func TestReloadKeepsPoolsOfUnchangedServices(t *testing.T) {
	a := newEcho(t, "a")
	g := startGateway(t, reloadYAML("one", ""), map[string]string{"A": hostPort(a)})
	remote := func() string {
		_, body := g.get(t, "/x")
		return decodeEcho(t, body).RemoteAddr
	}
	first := remote()
	if err := g.reload(reloadYAML("two", "")); err != nil {
		t.Fatal(err)
	}
	if got := remote(); got != first {
		t.Fatalf("after a reload that kept the service, the upstream connection changed (%s -> %s): pool not kept", first, got)
	}
	if n := g.srv.Registry().Transports.Len(); n != 1 {
		t.Fatalf("%d transports alive, want 1", n)
	}
	// Changing the service's pool settings builds a new pool and retires the old one.
	changed := strings.Replace(reloadYAML("three", ""), `targets: [{ url: "http://${A}" }]`,
		`targets: [{ url: "http://${A}" }]
    timeouts: { connect: 2s }`, 1)
	if err := g.reload(changed); err != nil {
		t.Fatal(err)
	}
	if got := remote(); got == first {
		t.Fatalf("changed service still uses the old pool")
	}
	deadline := time.Now().Add(3 * time.Second)
	for g.srv.Registry().Transports.Len() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := g.srv.Registry().Transports.Len(); n != 1 {
		t.Fatalf("%d transports alive after the old runtime drained, want 1 (leak)", n)
	}
}

// TestReloadUnderLoadLosesNothing drives sustained traffic, long-running and streaming requests
// through many reloads and requires every request to complete.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	streamRelease := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(700 * time.Millisecond)
			io.WriteString(w, "slow-done")
		case "/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; ; i++ {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				select {
				case <-streamRelease:
					io.WriteString(w, "data: end\n\n")
					return
				case <-time.After(20 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		default:
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(be.Close)
	g := startGateway(t, reloadYAML("0", ""), map[string]string{"A": hostPort(be)})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()

	var ok, failed atomic.Int64
	var failures sync.Map
	check := func(path, want string) {
		resp, err := client.Get(g.base + path)
		if err != nil {
			failed.Add(1)
			failures.Store(path+": "+err.Error(), true)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			failed.Add(1)
			failures.Store(fmt.Sprintf("%s: %d %v %.60q", path, resp.StatusCode, err, body), true)
			return
		}
		ok.Add(1)
	}

	var wg sync.WaitGroup
	// Long-running requests and streams in flight across reloads.
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); check("/slow", "slow-done") }()
		go func() { defer wg.Done(); check("/stream", "data: end") }()
	}
	const workers, perWorker = 8, 300
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				check("/fast", "ok")
				if i%100 == 50 {
					check("/slow", "slow-done")
				}
			}
		}()
	}
	reloads := 0
	stop := make(chan struct{})
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			if err := g.reload(reloadYAML(fmt.Sprint(i), "")); err != nil {
				t.Errorf("reload %d: %v", i, err)
				return
			}
			reloads++
		}
	}()
	time.Sleep(300 * time.Millisecond)
	close(streamRelease)
	wg.Wait()
	close(stop)
	<-reloadDone
	failures.Range(func(k, _ any) bool { t.Errorf("lost request: %v", k); return true })
	total := ok.Load() + failed.Load()
	if failed.Load() != 0 || total < 2000 || reloads < 10 {
		t.Fatalf("ok=%d failed=%d total=%d reloads=%d", ok.Load(), failed.Load(), total, reloads)
	}
	t.Logf("%d requests, %d reloads, 0 lost", total, reloads)
}

func TestShutdownDrainsInFlight(t *testing.T) {
	started := make(chan struct{}, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(500 * time.Millisecond)
		io.WriteString(w, "finished")
	}))
	t.Cleanup(be.Close)
	g := startGateway(t, reloadYAML("x", ""), map[string]string{"A": hostPort(be)})
	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(g.base + "/slow")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(bufio.NewReader(resp.Body))
		resp.Body.Close()
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-started
	if err := g.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r := <-res
	if r.err != nil || r.status != 200 || r.body != "finished" {
		t.Fatalf("in-flight request during shutdown: %+v", r)
	}
	if _, err := http.Get(g.base + "/after"); err == nil {
		t.Fatal("gateway still accepts connections after shutdown")
	}
}
