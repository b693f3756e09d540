package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil/certs"
)

func TestMain(m *testing.M) {
	// See checkFiles: the configs of the other tests name files that do not exist here.
	checkFiles = false
	os.Exit(m.Run())
}

// fileErrors decodes and defaults a config and returns what the file checks report on it,
// sorted as Validate sorts them.
func fileErrors(t *testing.T, data string) Errors {
	t.Helper()
	src, err := Decode("gw.yaml", []byte(data), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	src.Config.ApplyDefaults()
	var errs Errors
	checkConfigFiles(src.Config, func(path, format string, args ...any) { errs = append(errs, src.errorf(path, format, args...)) })
	sortErrors(errs)
	return errs
}

// TestValidateFiles checks that a file `gatehouse run` would fail to open or load is reported at
// the field naming it, so that `gatehouse validate` and the admin validate endpoint refuse it.
func TestValidateFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := certs.NewCA(t, "test CA")
	cert, key := ca.IssueFiles(t, dir, "a", "localhost")
	_, otherKey := ca.IssueFiles(t, dir, "b", "localhost")
	caFile := filepath.Join(dir, "ca.pem")
	junk := filepath.Join(dir, "junk.pem")
	secret := filepath.Join(dir, "secret")
	short := filepath.Join(dir, "short")
	for f, data := range map[string]string{caFile: string(ca.PEM), junk: "not PEM\n", secret: strings.Repeat("s", 32) + "\n", short: "short-secret-value\n"} {
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	config := func(listenerCert, listenerKey, clientCA, upstreamCA, upstreamCert, descriptors, hmacFile, publicKey, geoDB, accessLog string) string {
		return fmt.Sprintf(`version: 1
listeners:
  - name: p
    address: "127.0.0.1:0"
    tls:
      certificates: [{cert: %q, key: %q}]
      client_auth: {ca: [%q]}
services:
  - name: s
    targets: [{url: "https://127.0.0.1:1"}]
    tls: {ca: [%q], cert: %q, key: %q}
routes:
  - name: r
    match: {path: /a}
    service: s
    grpc: {descriptors: %q, method: a.B/C}
auth:
  issuers:
    - {name: h, algorithms: [HS256], hmac_secret_file: %q}
    - {name: k, algorithms: [RS256], public_keys: [%q]}
server:
  geo: {database: %q}
  access_log: {output: %q}
`, listenerCert, listenerKey, clientCA, upstreamCA, upstreamCert, key, descriptors, hmacFile, publicKey, geoDB, accessLog)
	}
	if errs := fileErrors(t, config(cert, key, caFile, caFile, cert, junk, secret, caFile, junk, filepath.Join(dir, "access.log"))); len(errs) > 0 {
		t.Fatalf("readable files refused:\n%v", errs)
	}
	errs := fileErrors(t, config(missing, missing, junk, missing, missing, missing, short, dir, missing, filepath.Join(missing, "access.log")))
	want := []struct {
		line      int
		path, msg string
	}{
		{6, "listeners[0].tls.certificates[0].cert", "no such file"},
		{6, "listeners[0].tls.certificates[0].key", "no such file"},
		{7, "listeners[0].tls.client_auth.ca[0]", "holds no PEM certificates"},
		{11, "services[0].tls.ca[0]", "no such file"},
		{11, "services[0].tls.cert", "no such file"},
		{16, "routes[0].grpc.descriptors", "no such file"},
		{19, "auth.issuers[0].hmac_secret_file", "holds a secret shorter than the 32 bytes HS256 needs"},
		{20, "auth.issuers[1].public_keys[0]", "is a directory"},
		{22, "server.geo.database", "no such file"},
		{23, "server.access_log.output", "no such file"},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if e := errs[i]; e.Line != w.line || e.Path != w.path || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d:\n got %s\nwant gw.yaml:%d: %s: ...%s...", i, e, w.line, w.path, w.msg)
		}
	}
	if strings.Contains(errs.Error(), "short-secret-value") {
		t.Errorf("an error shows the HMAC secret: %v", errs)
	}

	// A certificate and a key that are each readable but not a pair.
	errs = fileErrors(t, config(cert, otherKey, caFile, caFile, cert, junk, secret, caFile, junk, "stdout"))
	if len(errs) != 1 || errs[0].Path != "listeners[0].tls.certificates[0]" || !strings.Contains(errs[0].Msg, "does not match") {
		t.Errorf("mismatched pair: %v", errs)
	}
}

// TestValidateFilesAccessLog checks that only a file output is checked, and only when the
// access log is on; and that a directory is refused as the log file.
func TestValidateFilesAccessLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct{ log, want string }{
		{"{output: stdout}", ""},
		{"{output: stderr}", ""},
		{"{output: " + dir + "/new.log}", ""},
		{"{enabled: false, output: /nonexistent-dir/access.log}", ""},
		{"{output: /nonexistent-dir/access.log}", `directory "/nonexistent-dir": no such file`},
		{"{output: " + dir + "}", "is a directory"},
	} {
		errs := fileErrors(t, "version: 1\nserver:\n  access_log: "+tt.log+"\n")
		switch {
		case tt.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", tt.log, errs)
		case tt.want != "" && (len(errs) != 1 || errs[0].Path != "server.access_log.output" || !strings.Contains(errs[0].Msg, tt.want)):
			t.Errorf("%s: got %v, want %q", tt.log, errs, tt.want)
		}
	}
}
