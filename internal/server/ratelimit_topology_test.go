package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

func topologyYAML(storeYAML string) string {
	return `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0", token: "${ADMIN_TOKEN}" }
server: { access_log: { enabled: false } }
` + storeYAML + `
services:
  - name: a
    targets: [{ url: "http://${A}" }]
routes:
  - name: shared
    match: { path: /shared }
    service: a
    plugins: { rate_limit: [{ name: tenant, key: "header:X-Tenant", limit: 50, per: 1h, burst: 10 }] }
  - name: two
    match: { path: /two }
    service: a
    plugins:
      rate_limit:
        - { name: tenant, key: "header:X-Tenant", limit: 5, per: 1h }
        - { name: per-ip, key: ip, limit: 100, per: 1h }
`
}

// hammer sends 400 requests for one tenant through two gateways at once and returns how many
// were allowed and denied (and anything else).
func hammer(t *testing.T, gws []*obsGateway, tenant string) (ok, limited, other int64) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var nOK, nLim, nOther atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		g := gws[i%2]
		wg.Go(func() {
			for range 20 {
				switch code, _, _ := fire(client, g.base+"/shared", tenant); code {
				case 200:
					nOK.Add(1)
				case 429:
					nLim.Add(1)
				default:
					nOther.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return nOK.Load(), nLim.Load(), nOther.Load()
}

// TestRateLimitSentinel: the Redis limiter through a Sentinel (addrs + master_name) is exact
// across two gateways, and the admin API reads the counter through the same client.
func TestRateLimitSentinel(t *testing.T) {
	s := redisserver.StartSentinel(t)
	a := newEcho(t, "a")
	env := map[string]string{"A": hostPort(a), "ADMIN_TOKEN": adminToken}
	store := fmt.Sprintf("store: { redis: { addrs: [%q], master_name: %q, timeout: 500ms } }", s.Sentinel.Addr(), s.MasterName)
	gws := []*obsGateway{startObsGateway(t, topologyYAML(store), env, nil), startObsGateway(t, topologyYAML(store), env, nil)}
	ok, limited, other := hammer(t, gws, "acme")
	if ok != 60 || limited != 340 || other != 0 {
		t.Fatalf("through Sentinel: %d allowed, %d limited, %d other; want exactly 60 (limit 50 + burst 10)", ok, limited, other)
	}
	if keys, _ := s.Master.Do("KEYS", "gatehouse:*"); !strings.Contains(keys, "acme") {
		t.Fatalf("counter not on the master: %q", keys)
	}
	// Atomic script: a request denied by one limit is counted by none.
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	got := ""
	for range 8 {
		code, _, _ := fire(client, gws[0].base+"/two", "t1")
		got += map[int]string{200: "+", 429: "-"}[code]
	}
	if got != "+++++---" {
		t.Fatalf("/two: %s", got)
	}
	_, body := gws[1].admin(t, "GET", "/api/v1/ratelimit?key=header:X-Tenant%3Dt1%2Bip:127.0.0.1%2Broute:two", "")
	if got, want := limitLines(t, body), "tenant route:two header:X-Tenant=t1 redis 0\nper-ip route:two ip:127.0.0.1 redis 95"; got != want {
		t.Fatalf("inspection through Sentinel:\n%s\nwant\n%s", got, want)
	}
}

// TestRateLimitCluster: through a 3-node Redis Cluster (cluster: true) the limiter is exact
// across two gateways; the counters of one request live on different nodes (no hash tag ties
// them to one slot), and, as documented, each is its own script call in one pipeline, so a
// request denied by one limit is still counted by the others.
func TestRateLimitCluster(t *testing.T) {
	c := redisserver.StartCluster(t, 3)
	a := newEcho(t, "a")
	env := map[string]string{"A": hostPort(a), "ADMIN_TOKEN": adminToken}
	store := `store: { redis: { addrs: ["` + strings.Join(c.Addrs(), `", "`) + `"], cluster: true, timeout: 3s } }` // generous: exactness, not the fallback, is tested
	gws := []*obsGateway{startObsGateway(t, topologyYAML(store), env, nil), startObsGateway(t, topologyYAML(store), env, nil)}
	ok, limited, other := hammer(t, gws, "acme")
	if ok != 60 || limited != 340 || other != 0 {
		t.Fatalf("through Cluster: %d allowed, %d limited, %d other; want exactly 60 (limit 50 + burst 10)", ok, limited, other)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	// Find a tenant whose counter on /two lives on another node than the per-ip counter.
	nodeOf := func(substr string) int {
		t.Helper()
		byNode, err := c.Keys("gatehouse:rl:9:route:two*")
		if err != nil {
			t.Fatal(err)
		}
		for i, keys := range byNode {
			for _, k := range keys {
				if strings.Contains(k, substr) {
					return i
				}
			}
		}
		t.Fatalf("no counter containing %q: %v", substr, byNode)
		return -1
	}
	sent, tenant := 0, ""
	for i := range 20 {
		cand := "t" + strconv.Itoa(i)
		if code, _, _ := fire(client, gws[0].base+"/two", cand); code != 200 {
			t.Fatalf("first request of %s: %d", cand, code)
		}
		sent++
		if nodeOf(cand) != nodeOf("i=127.0.0.1") {
			tenant = cand
			break
		}
	}
	if tenant == "" {
		t.Fatal("every tenant counter landed on the per-ip counter's node")
	}
	got := "+"
	for range 7 {
		code, _, _ := fire(client, gws[1].base+"/two", tenant)
		got += map[int]string{200: "+", 429: "-"}[code]
		sent++
	}
	if got != "+++++---" {
		t.Fatalf("/two across nodes: %s", got)
	}
	// The per-ip counter counted all requests, the three denied ones included (pipelined
	// per-key scripts); the inspection reads both counters from their own nodes.
	_, body := gws[0].admin(t, "GET", "/api/v1/ratelimit?key=header:X-Tenant%3D"+tenant+"%2Bip:127.0.0.1%2Broute:two", "")
	want := fmt.Sprintf("tenant route:two header:X-Tenant=%s redis 0\nper-ip route:two ip:127.0.0.1 redis %d", tenant, 100-sent)
	if got := limitLines(t, body); got != want {
		t.Fatalf("inspection through Cluster:\n%s\nwant\n%s", got, want)
	}
}
