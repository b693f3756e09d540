package config

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, raw, want string }{
		{"plain", "http://127.0.0.1:8081/x", "http://127.0.0.1:8081/x"},
		{"host:port", "127.0.0.1:8081", "127.0.0.1:8081"},
		{"unparseable without credentials", "http://127.0.0.1:notaport", "http://127.0.0.1:notaport"},
		{"password", "ftp://u:Pw@files/x", "ftp://u:xxxxx@files/x"},
		{"lone userinfo", "redis://Pw@cache:6379", "redis://xxxxx@cache:6379"},
		{"query", "http://a/?api_key=Pw&x=1", "http://a/?api_key=xxxxx&x=xxxxx"},
		{"bad port", "http://u:Pw@127.0.0.1:notaport", "http://u:xxxxx@127.0.0.1:notaport"},
		{"bad port with path", "http://u:Pw@h:x/p@q", "http://u:xxxxx@h:x/p@q"},
		{"@ in password", "http://u:P@w@h:x", "http://u:xxxxx@h:x"},
		{"bad port lone userinfo", "https://Pw@h:x", "https://xxxxx@h:x"},
		{"bad port query", "http://h:x/?token=Pw#f", "http://h:x/?xxxxx#f"},
		{"no scheme", "u:Pw@h:1", "u:xxxxx@h:1"},
		{"no scheme, // in path", "u:Pw@h:x//p", "u:xxxxx@h:x//p"},
		{"opaque", "http:u:Pw@h", "http:xxxxx@h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := redactURL(tt.raw); got != tt.want {
				t.Errorf("redactURL(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

// TestValidationErrorsRedactURLSecrets: rejected configs are logged and shown by the admin API
// (GET /api/v1/reloads), so a message that quotes a URL must not carry its password.
func TestValidationErrorsRedactURLSecrets(t *testing.T) {
	t.Parallel()
	const secret = "TargetSecretPw"
	cfg := func(target, extra string) string {
		return `version: 1
listeners: [{ name: public, address: "127.0.0.1:8080" }]
services:
  - name: users
    targets: [{ url: "` + target + `" }]
routes:
  - name: r
    match: { path: /a }
    service: users
` + extra
	}
	const ok = "http://127.0.0.1:8081"
	issuer := func(field string) string {
		return "auth:\n  issuers: [{ name: i, algorithms: [RS256], " + field + " }]\n"
	}
	tests := []struct {
		name, yaml, path, msg string
	}{
		{"target bad port", cfg("http://u:"+secret+"@127.0.0.1:notaport", ""),
			"services[0].targets[0].url", `"http://u:xxxxx@127.0.0.1:notaport" is not a valid URL`},
		{"target credentials", cfg("http://u:"+secret+"@127.0.0.1:8081", ""),
			"services[0].targets[0].url", `"http://u:xxxxx@127.0.0.1:8081" must not carry a query, fragment or credentials`},
		{"target secret query", cfg("http://127.0.0.1:8081/?api_key="+secret, ""),
			"services[0].targets[0].url", `"http://127.0.0.1:8081/?api_key=xxxxx" must not carry`},
		{"target scheme", cfg("ftp://u:"+secret+"@files", ""),
			"services[0].targets[0].url", `"ftp://u:xxxxx@files" must use http or https`},
		{"forward_auth bad port", cfg(ok, "    plugins: { forward_auth: { url: \"http://u:"+secret+"@127.0.0.1:notaport\" } }\n"),
			"routes[0].plugins.forward_auth.url", `"http://u:xxxxx@127.0.0.1:notaport" must be an http or https URL`},
		{"forward_auth scheme", cfg(ok, "    plugins: { forward_auth: { url: \"ftp://u:"+secret+"@auth/\" } }\n"),
			"routes[0].plugins.forward_auth.url", `"ftp://u:xxxxx@auth/" must be an http or https URL`},
		{"jwks_url over http", cfg(ok, issuer(`jwks_url: "http://u:`+secret+`@idp.example.com/j"`)),
			"auth.issuers[0].jwks_url", `"http://u:xxxxx@idp.example.com/j" must use https`},
		{"discovery bad port", cfg(ok, issuer(`discovery: "https://u:`+secret+`@idp:notaport"`)),
			"auth.issuers[0].discovery", `"https://u:xxxxx@idp:notaport" is not a URL`},
		{"tracing.endpoint bad port", cfg(ok, "tracing: { endpoint: \"http://u:"+secret+"@127.0.0.1:notaport\" }\n"),
			"tracing.endpoint", `"http://u:xxxxx@127.0.0.1:notaport" must be an http or https URL`},
		{"tracing.endpoint scheme", cfg(ok, "tracing: { endpoint: \"grpc://u:"+secret+"@collector:4317\" }\n"),
			"tracing.endpoint", `"grpc://u:xxxxx@collector:4317" must be an http or https URL`},
		{"admin.address", cfg(ok, "admin: { address: \"http://u:"+secret+"@127.0.0.1:9901\" }\n"),
			"admin.address", `"http://u:xxxxx@127.0.0.1:9901" is not host:port`},
		{"listener address", strings.Replace(cfg(ok, ""), `"127.0.0.1:8080"`, `"http://u:`+secret+`@127.0.0.1:8080"`, 1),
			"listeners[0].address", `"http://u:xxxxx@127.0.0.1:8080" is not host:port`},
		{"redis addrs", cfg(ok, "store: { redis: { addrs: [\"redis://:"+secret+"@10.0.0.1\"] } }\n"),
			"store.redis.addrs[0]", `"redis://:xxxxx@10.0.0.1" is not host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("gw.yaml", []byte(tt.yaml), noEnv)
			if err == nil {
				t.Fatal("config accepted")
			}
			msg := err.Error()
			if strings.Contains(msg, secret) {
				t.Errorf("error quotes the secret:\n%s", msg)
			}
			if !strings.Contains(msg, tt.path+": "+tt.msg) {
				t.Errorf("error lacks %q:\n%s", tt.path+": "+tt.msg, msg)
			}
		})
	}
}
