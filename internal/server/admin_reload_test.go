package server

import (
	"net"
	"strings"
	"testing"
)

// TestAdminTokenFollowsReload rotates admin.token by reloads: the admin API must require the
// token of the config serving now, never the one it started with.
func TestAdminTokenFollowsReload(t *testing.T) {
	const oldToken, newToken = "old-admin-token-0123456789", "new-admin-token-9876543210"
	echo := newEcho(t, "echo")
	g := startObsGateway(t, adminYAML, map[string]string{"ECHO": hostPort(echo), "ADMIN_TOKEN": oldToken}, nil)
	status := func(token, host string) int {
		t.Helper()
		g.token = token
		var hdr []string
		if host != "" {
			hdr = []string{"Host", host}
		}
		resp, _ := g.admin(t, "GET", "/api/v1/routes", "", hdr...)
		return resp.StatusCode
	}
	if got := status(oldToken, ""); got != 200 {
		t.Fatalf("old token before the rotation: %d, want 200", got)
	}

	g.env["ADMIN_TOKEN"] = newToken
	if err := g.reload(adminYAML); err != nil {
		t.Fatalf("reload with the new token: %v", err)
	}
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"old token after the rotation", oldToken, 401},
		{"new token after the rotation", newToken, 200},
		{"no token after the rotation", "", 401},
	} {
		if got := status(c.token, ""); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}

	// A rejected reload keeps the serving config, and with it the serving token.
	g.env["ADMIN_TOKEN"] = "too-short"
	if err := g.reload(adminYAML); err == nil {
		t.Fatal("a reload with a too-short admin.token was accepted")
	}
	if got := status(newToken, ""); got != 200 {
		t.Errorf("new token after a rejected reload: %d, want 200", got)
	}

	// Removing the token (the listener is on loopback) falls back to the documented rule:
	// loopback hosts only, whatever Authorization says.
	if err := g.reload(strings.Replace(adminYAML, `, token: "${ADMIN_TOKEN}"`, "", 1)); err != nil {
		t.Fatalf("reload without a token: %v", err)
	}
	if got := status("", ""); got != 200 {
		t.Errorf("loopback without a token after the removal: %d, want 200", got)
	}
	if got := status(oldToken, ""); got != 200 {
		t.Errorf("loopback with a stale token after the removal: %d, want 200", got)
	}
	if got := status("", "evil.example:9901"); got != 403 {
		t.Errorf("non-loopback Host without a token after the removal: %d, want 403", got)
	}

	// Setting a token again makes it required at once.
	g.env["ADMIN_TOKEN"] = newToken
	if err := g.reload(adminYAML); err != nil {
		t.Fatalf("reload restoring a token: %v", err)
	}
	if got := status("", ""); got != 401 {
		t.Errorf("no token after one was set again: %d, want 401", got)
	}
	if got := status(newToken, ""); got != 200 {
		t.Errorf("token after it was set again: %d, want 200", got)
	}
}

// TestAdminReloadNotes checks the warnings about admin settings a reload cannot apply: the
// admin listener is bound at start, so only a restart moves, adds or removes it.
func TestAdminReloadNotes(t *testing.T) {
	echo := newEcho(t, "echo")
	env := map[string]string{"ECHO": hostPort(echo), "ADMIN_TOKEN": adminToken}
	noAdmin := strings.Replace(adminYAML, "admin: { address: \"127.0.0.1:0\", token: \"${ADMIN_TOKEN}\" }\n", "", 1)
	if noAdmin == adminYAML {
		t.Fatal("adminYAML no longer has the admin line this test edits")
	}
	withAdmin := startObsGateway(t, adminYAML, env, nil)
	withoutAdmin := startObsGateway(t, noAdmin, env, nil)
	bound := withAdmin.srv.AdminAddr()
	tests := []struct {
		name string
		g    *obsGateway
		yaml string
		want []string // substrings, one per note
	}{
		{"unchanged", withAdmin, adminYAML, nil},
		{"token rotated", withAdmin, strings.Replace(adminYAML, "${ADMIN_TOKEN}", "another-token-0123456789", 1), nil},
		{"token removed on loopback", withAdmin, strings.Replace(adminYAML, `, token: "${ADMIN_TOKEN}"`, "", 1), nil},
		{"address changed", withAdmin, strings.Replace(adminYAML, "127.0.0.1:0", "127.0.0.1:19901", 1),
			[]string{`admin.address changed from "127.0.0.1:0" to "127.0.0.1:19901": applies at restart; the admin API keeps serving on ` + bound}},
		{"address removed", withAdmin, noAdmin,
			[]string{"admin.address removed: applies at restart; the admin API keeps serving on " + bound}},
		{"address added", withoutAdmin, adminYAML,
			[]string{`admin.address "127.0.0.1:0" added: the admin listener starts at restart`}},
		{"still no admin", withoutAdmin, noAdmin, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.g.load(tc.yaml)
			tc.g.srv.mu.Lock()
			got := tc.g.srv.adminReloadNotesLocked(cfg)
			tc.g.srv.mu.Unlock()
			if len(got) != len(tc.want) {
				t.Fatalf("notes %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("note %q, want it to contain %q", got[i], w)
				}
			}
		})
	}
}

// TestAdminTokenRemovedOnWildcardListener: a reload may remove the token of an admin listener
// bound to every interface (moving admin.address to loopback, which applies at restart). The
// listener keeps its socket until then, so the no-token rule must not trust the Host header
// alone: a remote client can send Host: localhost.
func TestAdminTokenRemovedOnWildcardListener(t *testing.T) {
	ip := nonLoopbackIP(t)
	echo := newEcho(t, "echo")
	wild := strings.Replace(adminYAML, "127.0.0.1:0", "0.0.0.0:0", 1)
	g := startObsGateway(t, wild, map[string]string{"ECHO": hostPort(echo), "ADMIN_TOKEN": adminToken}, nil)
	_, port, err := net.SplitHostPort(g.srv.AdminAddr())
	if err != nil {
		t.Fatal(err)
	}
	loopbackBase, remoteBase := "http://127.0.0.1:"+port, "http://"+net.JoinHostPort(ip, port)

	noToken := strings.Replace(adminYAML, `, token: "${ADMIN_TOKEN}"`, "", 1)
	cfg := g.load(noToken)
	g.srv.mu.Lock()
	notes := g.srv.adminReloadNotesLocked(cfg)
	g.srv.mu.Unlock()
	if len(notes) != 2 || !strings.Contains(notes[1], "answers only loopback connections") {
		t.Errorf("notes %q, want an address change and a loopback-only warning", notes)
	}
	if err := g.reload(noToken); err != nil {
		t.Fatalf("reload without a token: %v", err)
	}
	g.token = ""
	for _, c := range []struct {
		name, base string
		want       int
	}{
		{"loopback connection", loopbackBase, 200},
		{"connection to " + ip, remoteBase, 403},
	} {
		g.adminBase = c.base
		resp, _ := g.admin(t, "GET", "/api/v1/routes", "", "Host", "localhost")
		if resp.StatusCode != c.want {
			t.Errorf("%s with Host: localhost and no token: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
}

// nonLoopbackIP returns an address of this machine that is not loopback, or skips the test.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address to connect to")
	return ""
}
