package server

import "testing"

// Requests that authentication refuses count against the rate limits, so guessing credentials
// is throttled: after the per-IP budget, the guesser gets 429, valid key or not; a route without
// limits still answers 401.
func TestRefusedCredentialsAreRateLimited(t *testing.T) {
	g := startKeyGateway(t, `
  - name: limited
    match: { path: /limited/** }
    service: a
    plugins:
      api_key: { header: X-API-Key }
      rate_limit: [{ name: per-ip, key: ip, limit: 5, per: 1h }]
  - name: unlimited
    match: { path: /unlimited/** }
    service: a
    plugins:
      api_key: { header: X-API-Key }
`)
	got := ""
	for range 8 {
		resp, _ := g.get(t, "/limited/x", "X-API-Key", "guess")
		got += map[int]string{401: "u", 429: "-"}[resp.StatusCode]
	}
	if got != "uuuuu---" {
		t.Fatalf("bad keys: %s, want uuuuu--- (401 until the limit, then 429)", got)
	}
	if resp, _ := g.get(t, "/limited/x", "X-API-Key", partnerKey); resp.StatusCode != 429 {
		t.Fatalf("a valid key from the throttled IP: %d, want 429", resp.StatusCode)
	}
	if resp, body := g.get(t, "/unlimited/x", "X-API-Key", "guess"); resp.StatusCode != 401 || decodeError(t, resp, body).Error == "" {
		t.Fatalf("a bad key on a route without limits: %d %s, want 401", resp.StatusCode, body)
	}
	if resp, _ := g.get(t, "/unlimited/x", "X-API-Key", partnerKey); resp.StatusCode != 200 {
		t.Fatalf("a valid key on a route without limits: %d", resp.StatusCode)
	}
}
