package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the gatehouse binary: run as a subprocess with GATEHOUSE_MAIN=1 it
// executes the real main path (flags, signals, exit codes).
func TestMain(m *testing.M) {
	if os.Getenv("GATEHOUSE_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

type proc struct {
	cmd    *exec.Cmd
	stdout *lockedBuf
	stderr *lockedBuf
	done   chan struct{}
	code   int
}

type lockedBuf = syncbuf.Buffer

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "GATEHOUSE_MAIN=1")
	p := &proc{cmd: cmd, stdout: &lockedBuf{}, stderr: &lockedBuf{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("process did not exit within %v\nstdout: %s\nstderr: %s", d, p.stdout, p.stderr)
		return -1
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "gatehouse ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run(nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "gatehouse run -c") {
		t.Fatalf("no args: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errOut.String())
	}
}

// TestCommandFlags checks each command's own -h exits 0 like "gatehouse -h", and that an
// argument a command takes none of is refused with its usage rather than ignored:
// "gatehouse validate gatehouse.yaml" (without -c) would otherwise check the default file.
func TestCommandFlags(t *testing.T) {
	for _, cmd := range []string{"run", "validate", "demo", "token", "hash-key"} {
		var out, errOut bytes.Buffer
		if code := run([]string{cmd, "-h"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "-") {
			t.Errorf("%s -h: exit %d, want 0; stderr %q", cmd, code, errOut.String())
		}
	}
	for _, args := range [][]string{{"validate", "-c", "x.yaml", "extra"}, {"validate", "x.yaml"}, {"run", "-c", "x.yaml", "extra"}, {"demo", "extra"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unexpected argument "`) || !strings.Contains(errOut.String(), "-c") && args[0] != "demo" {
			t.Errorf("%v: exit %d, want 2 with the usage; stderr %q", args, code, errOut.String())
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`version: 1
listeners: [{ name: public, address: ":8080" }]
services: [{ name: s, targets: [{ url: "http://127.0.0.1:9" }] }]
routes: [{ name: r, match: { path: /** }, service: s }]
`), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`version: 1
listeners: [{ name: public, address: ":8080" }]
services:
  - name: s
    targets: [{ url: "http://127.0.0.1:9" }]
    timeouts: { connect: 5 seconds }
routes: [{ name: r, match: { path: /** }, service: s }]
`), 0o600)
	bad2 := filepath.Join(dir, "bad2.yaml")
	os.WriteFile(bad2, []byte(`version: 1
listeners: [{ name: public, address: ":8080" }]
services:
  - name: s
    targets: [{ url: "http://127.0.0.1:9" }]
routes:
  - name: r
    match: { path: "/users/{id}" }
    service: nope
  - name: r2
    match: { path: "/users/{uid}" }
    service: s
`), 0o600)

	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "-c", good}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok (1 listeners, 1 services, 1 routes)") {
		t.Fatalf("good: %d %q %q", code, out.String(), errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"validate", "-c", bad}, &out, &errOut); code != 1 {
		t.Fatalf("bad: exit %d", code)
	}
	if want := bad + ":6:26: services[0].timeouts.connect: invalid duration"; !strings.HasPrefix(errOut.String(), want) {
		t.Fatalf("bad: got %q, want prefix %q", errOut.String(), want)
	}
	errOut.Reset()
	if code := run([]string{"validate", "-c", bad2}, &out, &errOut); code != 1 {
		t.Fatalf("bad2: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	want := []*regexp.Regexp{
		regexp.MustCompile(`^` + regexp.QuoteMeta(bad2) + `:9:5: routes\[0\]\.service: unknown service "nope"$`),
		regexp.MustCompile(`^` + regexp.QuoteMeta(bad2) + `:11:5: routes\[1\]\.match: matches exactly the same requests as routes\[0\]`),
		regexp.MustCompile(`2 problem\(s\)$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("bad2: got %d lines:\n%s", len(lines), errOut.String())
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i, lines[i], re)
		}
	}
	errOut.Reset()
	if code := run([]string{"validate", "-c", filepath.Join(dir, "missing.yaml")}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "no such file") {
		t.Fatalf("missing: %d %q", code, errOut.String())
	}
}

// `gatehouse validate` says "ok" for configs that `gatehouse run` refuses to start: files the
// config names are only opened when the Runtime is compiled or the listeners start.
func TestValidateChecksReferencedFiles(t *testing.T) {
	const head = "version: 1\nservices: [{name: s, targets: [{url: \"http://127.0.0.1:1\"}]}]\n"
	cases := map[string]string{
		"tls cert": head + "listeners: [{name: p, address: \"127.0.0.1:0\", tls: {certificates: [{cert: missing.pem, key: missing.key}]}}]\nroutes: [{name: r, match: {path: /a}, service: s}]\n",
		"geo db":   head + "listeners: [{name: p, address: \"127.0.0.1:0\"}]\nserver: {geo: {database: missing.mmdb}}\nroutes: [{name: r, match: {path: /a}, service: s}]\n",
		"hmac file": head + "listeners: [{name: p, address: \"127.0.0.1:0\"}]\nauth: {issuers: [{name: i, algorithms: [HS256], hmac_secret_file: missing.txt}]}\n" +
			"routes: [{name: r, match: {path: /a}, service: s, plugins: {jwt: {}}}]\n",
		"access log": head + "listeners: [{name: p, address: \"127.0.0.1:0\"}]\nserver: {access_log: {output: /nonexistent-dir/access.log}}\nroutes: [{name: r, match: {path: /a}, service: s}]\n",
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gw.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := run([]string{"validate", "-c", path}, &out, &errb); code != 1 {
				t.Errorf("validate exit %d, want 1 (run refuses this config); stdout %q", code, out.String())
			}
		})
	}
}

func runConfig(addr, backend, tag string) string {
	return fmt.Sprintf(`version: 1
listeners: [{ name: public, address: "%s" }]
server: { shutdown_timeout: 5s, access_log: { enabled: false } }
services: [{ name: s, targets: [{ url: "http://%s" }] }]
routes:
  - name: r
    match: { path: /** }
    service: s
    response_headers: { set: { X-Config: %s } }
`, addr, backend, tag)
}

// TestRunReloadAndGracefulStop drives the real process: file-change reload, a rejected
// config, SIGHUP reload, then SIGTERM with a request in flight.
func TestRunReloadAndGracefulStop(t *testing.T) {
	inflight := make(chan struct{}, 1)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			inflight <- struct{}{}
			time.Sleep(700 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	}))
	defer be.Close()
	backend := strings.TrimPrefix(be.URL, "http://")
	addr := freeAddr(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	os.WriteFile(cfgPath, []byte(runConfig(addr, backend, "one")), 0o600)

	p := start(t, "run", "-c", cfgPath)
	client := &http.Client{Timeout: 5 * time.Second}
	header := func() string {
		resp, err := client.Get("http://" + addr + "/x")
		if err != nil {
			return "error: " + err.Error()
		}
		resp.Body.Close()
		return resp.Header.Get("X-Config")
	}
	waitFor(t, "gateway to serve", 10*time.Second, func() bool { return header() == "one" })

	// Editing the file reloads it.
	os.WriteFile(cfgPath, []byte(runConfig(addr, backend, "two")), 0o600)
	waitFor(t, "file-change reload", 5*time.Second, func() bool { return header() == "two" })

	// A broken file is rejected and logged; the old config keeps serving.
	os.WriteFile(cfgPath, []byte("version: 1\nlisteners: [\n"), 0o600)
	waitFor(t, "rejection to be logged", 5*time.Second, func() bool { return strings.Contains(p.stderr.String(), "config rejected") })
	if h := header(); h != "two" {
		t.Fatalf("after a broken config the gateway answers %q", h)
	}

	// SIGHUP reloads too (write the file with the watcher racing is fine: both reload it).
	os.WriteFile(cfgPath, []byte(runConfig(addr, backend, "three")), 0o600)
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "SIGHUP reload", 5*time.Second, func() bool { return header() == "three" })

	// SIGTERM drains the in-flight request, then exits 0.
	got := make(chan string, 1)
	go func() {
		resp, err := client.Get("http://" + addr + "/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- fmt.Sprintf("%d %s", resp.StatusCode, b)
	}()
	<-inflight
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if r := <-got; r != "200 ok" {
		t.Fatalf("in-flight request during SIGTERM: %s", r)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "draining in-flight requests") {
		t.Errorf("shutdown not logged:\n%s", p.stderr)
	}
}

// TestRunSIGHUPWhileLoading sends SIGHUP while the config is still compiling, as a
// config-reloader sidecar may: the process must live, start, and then reload the file. The
// compile is held still by an hmac_secret_file that is a FIFO: opening it for writing returns
// once the gateway opened it for reading, and the gateway's read returns once the test writes.
func TestRunSIGHUPWhileLoading(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer be.Close()
	backend := strings.TrimPrefix(be.URL, "http://")
	addr := freeAddr(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "jwt-secret")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`version: 1
listeners: [{ name: public, address: "%s" }]
server: { shutdown_timeout: 5s, access_log: { enabled: false } }
auth:
  issuers: [{ name: local, algorithms: [HS256], hmac_secret_file: %q }]
services: [{ name: s, targets: [{ url: "http://%s" }] }]
routes:
  - name: private
    match: { path: /private/** }
    service: s
    plugins: { jwt: {} }
  - name: r
    match: { path: /** }
    service: s
    response_headers: { set: { X-Config: one } }
`, addr, fifo, backend)), 0o600)

	p := start(t, "run", "-c", cfgPath, "-watch=false")
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
		}
		opened <- f
	}()
	var secret *os.File
	select {
	case secret = <-opened:
	case <-p.done:
		t.Fatalf("exited before reading its config: %d\n%s", p.code, p.stderr)
	case <-time.After(10 * time.Second):
		// Unblock the opener by opening the read end ourselves, then fail.
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			defer f.Close()
		}
		t.Fatalf("the gateway never opened hmac_secret_file\n%s", p.stderr)
	}
	if secret == nil {
		t.FailNow()
	}
	defer secret.Close()

	// The gateway is blocked reading the secret: this SIGHUP comes mid-compile.
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-p.done:
		t.Fatalf("SIGHUP while loading the config ended the process: exit %d\n%s", p.code, p.stderr)
	case <-time.After(300 * time.Millisecond):
	}
	// The sidecar's new config, written before the gateway is ready; the SIGHUP must load it.
	os.WriteFile(cfgPath, []byte(runConfig(addr, backend, "two")), 0o600)
	if _, err := io.WriteString(secret, "0123456789abcdef0123456789abcdef\n"); err != nil {
		t.Fatal(err)
	}
	secret.Close()

	client := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, "the SIGHUP's reload once serving", 10*time.Second, func() bool {
		resp, err := client.Get("http://" + addr + "/x")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.Header.Get("X-Config") == "two"
	})
	if !strings.Contains(p.stderr.String(), "SIGHUP: reloading config") {
		t.Errorf("the reload is not logged as the SIGHUP's:\n%s", p.stderr)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, p.stderr)
	}
}

// TestDemo runs `gatehouse demo` as a newcomer would and follows the printed curl commands.
func TestDemo(t *testing.T) {
	var p *proc
	var addr, bff, bffMobile, bffWeb, adminAddr string
	for attempt := 1; ; attempt++ {
		addr = freeAddr(t)
		bff, bffMobile, bffWeb = freeAddr(t), freeAddr(t), freeAddr(t)
		adminAddr = freeAddr(t)
		p = start(t, "demo", "-listen", addr, "-admin", adminAddr, "-bff-listen", bff, "-bff-mobile", bffMobile, "-bff-web", bffWeb)
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(p.stdout.String(), "Backends for Frontends") && time.Now().Before(deadline) {
			select {
			case <-p.done:
				deadline = time.Now() // exited: stop waiting
			case <-time.After(25 * time.Millisecond):
			}
		}
		if strings.Contains(p.stdout.String(), "Backends for Frontends") {
			break
		}
		exited := false
		select {
		case <-p.done:
			exited = true
		default:
		}
		// A port freeAddr found free can be taken by a parallel test package before the demo
		// binds it: the demo then exits at once. Try again with new ports; anything else fails.
		if !exited || attempt == 3 {
			t.Fatalf("no demo banner (attempt %d, exited %v)\nstdout:\n%s\nstderr:\n%s", attempt, exited, p.stdout, p.stderr)
		}
		t.Logf("demo exited before its banner (attempt %d), retrying: %s", attempt, p.stderr)
	}
	out := p.stdout.String()
	for _, want := range []string{"http://" + addr + "/api/v1/users/1", "Accept-Version: v2", "round robin"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	get := func(path string, hdr ...string) map[string]any {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		m["_status"] = resp.StatusCode
		return m
	}
	if m := get("/api/v1/users/1"); m["version"] != "v1" {
		t.Errorf("v1: %v", m)
	}
	if m := get("/api/v2/users/1"); m["version"] != "v2" {
		t.Errorf("v2: %v", m)
	}
	if m := get("/api/users/1", "Accept-Version", "v2"); m["version"] != "v2" {
		t.Errorf("header v2: %v", m)
	}
	if m := get("/api/users/1"); m["version"] != "v1" {
		t.Errorf("header default: %v", m)
	}
	seen := map[any]int{}
	for i := 0; i < 4; i++ {
		seen[get("/api/v1/users")["served_by"]]++
	}
	if seen["users-1"] != 2 || seen["users-2"] != 2 {
		t.Errorf("round robin over the two users instances: %v", seen)
	}
	if m := get("/nope"); m["_status"] != 404 || m["error"] != "not_found" {
		t.Errorf("404: %v", m)
	}
	// The dashboard and metrics of the demo gateway.
	for path, want := range map[string]string{"/": "<title>", "/metrics": `gatehouse_requests_total{method="GET",route="users-v1"`} {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("admin %s: %d, want %q in the body", path, resp.StatusCode, want)
		}
	}
	// The BFF gateway: the same product page shaped for web and for mobile.
	getAt := func(base, path string, hdr ...string) map[string]any {
		req, _ := http.NewRequest("GET", "http://"+base+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return m
	}
	web := getAt(bff, "/bff/products/p1")
	mobile := getAt(bff, "/bff/products/p1", "X-Client-Type", "mobile")
	if len(mobile) == 0 || len(web) <= len(mobile) {
		t.Errorf("BFF shaping: web %v, mobile %v (mobile should be smaller)", web, mobile)
	}
	if m := getAt(bffMobile, "/bff/products/p1"); len(m) != len(mobile) {
		t.Errorf("the mobile listener should serve the mobile shape: %v", m)
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("demo exit %d: %s", code, p.stderr)
	}
}

// TestRunCPUProfile checks the opt-in -cpuprofile flag: the profile is written until a clean
// shutdown, and a path that cannot be created stops the command before it serves.
func TestRunCPUProfile(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer be.Close()
	addr := freeAddr(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	os.WriteFile(cfgPath, []byte(runConfig(addr, strings.TrimPrefix(be.URL, "http://"), "one")), 0o600)

	var out, errOut bytes.Buffer
	bad := filepath.Join(dir, "missing", "cpu.pprof")
	if code := run([]string{"run", "-c", cfgPath, "-cpuprofile", bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "cpu profile") {
		t.Fatalf("unwritable profile path: exit %d, stderr %q", code, errOut.String())
	}

	prof := filepath.Join(dir, "cpu.pprof")
	p := start(t, "run", "-c", cfgPath, "-watch=false", "-cpuprofile", prof)
	client := &http.Client{Timeout: 5 * time.Second}
	waitFor(t, "gateway to serve", 10*time.Second, func() bool {
		resp, err := client.Get("http://" + addr + "/x")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, p.stderr)
	}
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	// A pprof profile is gzip-compressed protobuf.
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile is not a gzip'd pprof file (%d bytes)", len(b))
	}
}
