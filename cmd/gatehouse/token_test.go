package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/demo"
	"github.com/gatehouse/gatehouse/internal/middleware/auth"
	"github.com/golang-jwt/jwt/v5"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	var code int
	switch args[0] {
	case "hash-key":
		code = cmdHashKey(args[1:], strings.NewReader(stdin), &out, &errb)
	default:
		code = run(args, &out, &errb)
	}
	return code, out.String(), errb.String()
}

func parseToken(t *testing.T, tok string, secret []byte) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})).ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return secret, nil })
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	return claims
}

func TestTokenCommand(t *testing.T) {
	code, out, errs := runCmd(t, "", "token", "-sub", "7", "-perm", "users:read", "-perm", "orders:read", "-ttl", "10m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	c := parseToken(t, strings.TrimSpace(out), []byte(demo.JWTSecret))
	if c["sub"] != "7" || c["iss"] != demo.JWTIssuer || c["aud"] != demo.JWTAudience {
		t.Fatalf("claims %v", c)
	}
	if p, _ := c["permissions"].([]any); len(p) != 2 || p[0] != "users:read" {
		t.Fatalf("permissions %v", c["permissions"])
	}
	if exp, _ := c.GetExpirationTime(); exp == nil || time.Until(exp.Time) > 10*time.Minute || time.Until(exp.Time) < 9*time.Minute {
		t.Fatalf("exp %v", exp)
	}

	code, out, _ = runCmd(t, "", "token", "-claim", "scope", "-perm", "a", "-perm", "b")
	if c := parseToken(t, strings.TrimSpace(out), []byte(demo.JWTSecret)); code != 0 || c["scope"] != "a b" {
		t.Fatalf("scope claim: %v", c)
	}

	secretFile := filepath.Join(t.TempDir(), "s")
	_ = os.WriteFile(secretFile, []byte("file-secret-of-at-least-32-bytes!!\n"), 0o600)
	code, out, _ = runCmd(t, "", "token", "-secret-file", secretFile)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	parseToken(t, strings.TrimSpace(out), []byte("file-secret-of-at-least-32-bytes!!"))

	t.Setenv("GH_TEST_SECRET", "env-secret-of-at-least-32-bytes!!!")
	code, out, _ = runCmd(t, "", "token", "-secret-env", "GH_TEST_SECRET")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	parseToken(t, strings.TrimSpace(out), []byte("env-secret-of-at-least-32-bytes!!!"))

	// A secret the gateway would refuse for the algorithm still signs (the token may be for
	// another verifier), with a warning.
	t.Setenv("GH_TEST_SHORT", "short-secret")
	code, out, errs = runCmd(t, "", "token", "-secret-env", "GH_TEST_SHORT")
	if code != 0 || !strings.Contains(errs, "warning: the secret is 12 bytes; the gateway refuses HS256 secrets under 32 bytes") {
		t.Fatalf("short secret: exit %d, stderr %q", code, errs)
	}
	parseToken(t, strings.TrimSpace(out), []byte("short-secret"))
	if _, _, errs = runCmd(t, "", "token"); errs != "" {
		t.Errorf("demo secret: stderr %q", errs)
	}

	for _, bad := range [][]string{{"token", "-secret-env", "GH_NOT_SET_EVER"}, {"token", "-alg", "RS256"}, {"token", "-alg", "none"}, {"token", "extra"}} {
		if code, _, _ := runCmd(t, "", bad...); code == 0 {
			t.Errorf("%v succeeded", bad)
		}
	}
}

func TestHashKeyCommand(t *testing.T) {
	code, out, _ := runCmd(t, "", "hash-key", "test")
	if code != 0 || strings.TrimSpace(out) != "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" {
		t.Fatalf("exit %d: %q", code, out)
	}
	code, out, _ = runCmd(t, "my-long-api-key-from-stdin-123\n", "hash-key", "-")
	if code != 0 || strings.TrimSpace(out) != auth.HashKey("my-long-api-key-from-stdin-123") {
		t.Fatalf("stdin: exit %d: %q", code, out)
	}
	code, out, _ = runCmd(t, "", "hash-key", "-generate")
	m := regexp.MustCompile(`(?m)^key:  (\S+)\nhash: (sha256:[0-9a-f]{64})$`).FindStringSubmatch(out)
	if code != 0 || m == nil || auth.HashKey(m[1]) != m[2] || len(m[1]) < 40 {
		t.Fatalf("generate: exit %d: %q", code, out)
	}
	for _, bad := range [][]string{{"hash-key"}, {"hash-key", "a", "b"}, {"hash-key", "-generate", "x"}} {
		if code, _, _ := runCmd(t, "", bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code, _, _ := runCmd(t, "\n", "hash-key", "-"); code != 1 {
		t.Errorf("empty key from stdin: exit %d, want 1", code)
	}
}

// TestDemoAuth follows the banner's authentication commands against a real `gatehouse demo`.
func TestDemoAuth(t *testing.T) {
	addr := freeAddr(t)
	p := start(t, "demo", "-listen", addr, "-admin", "off", "-bff-listen", "off")
	waitFor(t, "demo banner", 10*time.Second, func() bool { return strings.Contains(p.stdout.String(), "Press Ctrl-C") })
	banner := p.stdout.String()
	if !strings.Contains(banner, "X-API-Key: "+demo.APIKey) || !strings.Contains(banner, "gatehouse token -sub 1 -perm users:read") {
		t.Fatalf("banner lacks the auth commands:\n%s", banner)
	}
	call := func(hdr ...string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/me", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := call(); code != 401 || m["error"] != "missing_credentials" {
		t.Fatalf("no credential: %d %v", code, m)
	}
	_, tok, _ := runCmd(t, "", "token", "-sub", "1", "-perm", "users:read")
	if code, m := call("Authorization", "Bearer "+strings.TrimSpace(tok)); code != 200 || m["user_id"] != "1" {
		t.Fatalf("token: %d %v", code, m)
	}
	_, tok, _ = runCmd(t, "", "token", "-sub", "2")
	if code, m := call("Authorization", "Bearer "+strings.TrimSpace(tok)); code != 403 || m["error"] != "forbidden" {
		t.Fatalf("token without permission: %d %v", code, m)
	}
	if code, m := call("X-API-Key", demo.APIKey, "X-User-ID", "3"); code != 200 || m["consumer"] != "demo-app" || m["user_id"] != "" {
		t.Fatalf("API key: %d %v", code, m)
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("demo exit %d: %s", code, p.stderr)
	}
}
