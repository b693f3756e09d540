package admin

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

type redisLike struct {
	URL      string            `yaml:"url"`
	Addrs    []string          `yaml:"addrs"`
	Username string            `yaml:"username"`
	Password string            `yaml:"password"`
	Secret   config.Duration   `yaml:"hmac_secret"`
	Keys     []string          `yaml:"keys"`
	Headers  map[string]string `yaml:"headers"`
	Limit    int               `yaml:"limit"`
	Key      string            `yaml:"key"`
	MaxToken config.ByteSize   `yaml:"max_token_size"`
	hidden   string
}

func TestRedactConfig(t *testing.T) {
	t.Parallel()
	v := &redisLike{
		URL: "redis://user:hunter2-pass@redis:6379/0", Addrs: []string{"rediss://:only-pass@r:6380", "10.0.0.1:6379"},
		Username: "app", Password: "pw-secret", Keys: []string{"sha256:abc"}, Limit: 5, Key: "user",
		Headers:  map[string]string{"Proxy-Authorization": "Basic x1", "X-Api-Key": "k1", "X-Session-Token": "t1", "Cookie": "sid=c1", "Accept": "json"},
		MaxToken: config.Size(4096), hidden: "unexported",
	}
	out, err := json.Marshal(RedactConfig(v))
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, secret := range []string{"hunter2-pass", "only-pass", "pw-secret", "sha256:abc", "Basic x1", "k1", "t1", "sid=c1", "unexported"} {
		if strings.Contains(got, secret) {
			t.Errorf("leaks %q: %s", secret, got)
		}
	}
	for _, keep := range []string{`"url":"redis://user:[REDACTED]@redis:6379/0"`, `"rediss://:[REDACTED]@r:6380"`, `"10.0.0.1:6379"`,
		`"username":"app"`, `"limit":5`, `"key":"user"`, `"Accept":"json"`, `"max_token_size":"4096"`} {
		if !strings.Contains(got, keep) {
			t.Errorf("lacks %s: %s", keep, got)
		}
	}
	// Field order follows the struct, as in the YAML reference.
	if strings.Index(got, `"url"`) > strings.Index(got, `"addrs"`) {
		t.Errorf("fields out of order: %s", got)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://collector:4318":             "http://collector:4318",
		"https://u:p@h/x":                   "https://u:[REDACTED]@h/x",
		"https://h/cb?access_token=abc&x=1": "https://h/cb?access_token=[REDACTED]&x=1",
		"redis://secretonly@h:6379":         "redis://[REDACTED]@h:6379",
		"not a url":                         "not a url",
		"redis://user:p%zz@h":               "redis://[REDACTED]@h",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// docs/config-reference.md, tracing.headers: "The admin API shows them redacted." Every value is
// a collector credential; Honeycomb's is X-Honeycomb-Team.
func TestRedactConfigTracingHeaders(t *testing.T) {
	cfg := &config.Config{Tracing: config.Tracing{Enabled: true, Endpoint: "https://api.honeycomb.io",
		Headers: map[string]string{"X-Honeycomb-Team": "hc-team-secret", "X-Scope-OrgID": "org-secret"}}}
	out, err := json.Marshal(RedactConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hc-team-secret", "org-secret"} {
		if strings.Contains(string(out), s) {
			t.Errorf("GET /api/v1/config shows tracing header value %q", s)
		}
	}
}

// routes[].plugins.jwt.cookie is a cookie NAME (default access_token), not a credential; a Cookie
// header's value (TestRedactConfig) still is.
func TestRedactConfigJWTCookieName(t *testing.T) {
	cfg := &config.Config{Routes: []config.Route{{Name: "r", Plugins: config.Plugins{JWT: &config.JWTPlugin{Cookie: "access_token"}}}}}
	out, err := json.Marshal(RedactConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"cookie":"access_token"`) {
		t.Errorf("jwt.cookie (a cookie name) is redacted: %s", out)
	}
}
