package server

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const dashboardYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0" }
services:
  - name: users
    targets: [{ url: "http://${USERS_A}", weight: 2 }, { url: "http://${USERS_B}", weight: 1 }]
  - name: orders
    targets: [{ url: "http://${ORDERS}" }]
  - name: billing
    targets: [{ url: "http://${BILLING}" }]
routes:
  - name: users-v1
    match: { path: /api/v1/users/**, methods: [GET, POST] }
    service: users
    strip_prefix: /api/v1
  - name: orders
    match: { path: "/orders/{id}", methods: [GET] }
    service: orders
  - name: billing
    match: { path: /billing/** }
    service: billing
`

// chromiumPath finds the Debian chromium binary (or another Chromium/Chrome on PATH).
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestDashboardInBrowser loads the dashboard in headless Chromium against a gateway serving
// steady traffic and checks that it shows the routes, the services and a non-zero live rate.
// The screenshot is kept as a test artifact (and copied to $GATEHOUSE_ARTIFACTS when set).
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	chrome := chromiumPath()
	if chrome == "" {
		t.Skip("SKIP: chromium is not installed (apt-get install -y chromium); the dashboard browser test needs it")
	}
	ua, ub, orders := newEcho(t, "users-a"), newEcho(t, "users-b"), newEcho(t, "orders")
	billing := newStatusBackend(t, http.StatusServiceUnavailable)
	g := startObsGateway(t, dashboardYAML, map[string]string{
		"USERS_A": hostPort(ua), "USERS_B": hostPort(ub), "ORDERS": hostPort(orders), "BILLING": hostPort(billing),
	}, nil)

	// Steady traffic: mostly users, some orders, a trickle of failing billing calls.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := "/api/v1/users/" + strconv.Itoa(i)
				switch {
				case i%10 == 9 && w == 0:
					path = "/billing/invoices"
				case i%3 == 0:
					path = "/orders/" + strconv.Itoa(i)
				}
				if resp, err := client.Get(g.base + path); err == nil {
					resp.Body.Close()
				}
				time.Sleep(8 * time.Millisecond)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
		client.CloseIdleConnections()
	}()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1100),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(g.adminBase+"/"),
		chromedp.WaitVisible(chromedp.CSS("#routes tbody tr")),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	// Four polls: two give a rate, the rest fill the charts a little.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`Number(document.body.dataset.polls || 0) >= 4 && parseFloat(document.getElementById("total-rps").textContent) > 0`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("dashboard never showed a live rate: %v", err)
	}
	routesText, servicesText := text("#routes"), text("#services")
	rps, errRate, usersRPS := text("#total-rps"), text("#total-err"), text(`td.rps[data-route="users-v1"]`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	for _, want := range []string{"users-v1", "/api/v1/users/**", "orders", "/orders/{id}", "billing"} {
		if !strings.Contains(routesText, want) {
			t.Errorf("routes table lacks %q:\n%s", want, routesText)
		}
	}
	for _, want := range []string{"users", "http://" + hostPort(ua), "http://" + hostPort(ub), "weight 2", "2/2 healthy"} {
		if !strings.Contains(servicesText, want) {
			t.Errorf("services panel lacks %q:\n%s", want, servicesText)
		}
	}
	if v, err := strconv.ParseFloat(rps, 64); err != nil || v <= 0 {
		t.Errorf("live requests/s %q, want > 0", rps)
	}
	if v, err := strconv.ParseFloat(usersRPS, 64); err != nil || v <= 0 {
		t.Errorf("users-v1 requests/s %q, want > 0", usersRPS)
	}
	if !strings.HasSuffix(errRate, "%") {
		t.Errorf("error rate %q", errRate)
	}

	if len(shot) < 1000 {
		t.Fatalf("screenshot is %d bytes", len(shot))
	}
	out := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("GATEHOUSE_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "dashboard.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("dashboard screenshot: %s (%d bytes)", out, len(shot))
}
