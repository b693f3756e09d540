package store

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
	"github.com/redis/go-redis/v9"
)

// TestRedisClusterCountsOncePerKey: in a Cluster each key is its own script call; when only
// some nodes have the script cached, the NOSCRIPT retry must not run the others twice.
func TestRedisClusterCountsOncePerKey(t *testing.T) {
	c := redisserver.StartCluster(t, 3)
	r := newTestRedis(t, &config.RedisStore{Addrs: c.Addrs(), Cluster: true, Timeout: config.Dur(time.Second),
		RetryAfterError: config.Dur(100 * time.Millisecond), KeyPrefix: "t:"})
	// Two keys on different nodes; the script cached on the first key's node only.
	a, b := req("a", 10, time.Hour, 0), req("", 10, time.Hour, 0)
	na, err := c.NodeOf("t:a")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		b.Key = []byte("b" + string(rune('a'+i)))
		if nb, _ := c.NodeOf("t:" + string(b.Key)); nb != na {
			break
		}
	}
	node := redis.NewClient(&redis.Options{Addr: c.Nodes[na].Addr()})
	defer node.Close()
	if err := script.Load(context.Background(), node).Err(); err != nil {
		t.Fatal(err)
	}
	ok, res := allow(t, r, a, b)
	if !ok || res[0].Remaining != 9 || res[1].Remaining != 9 {
		t.Fatalf("first call: %v %+v, want each key counted once (9 left)", ok, res)
	}
	got := make([]Result, 2)
	if errs := r.Peek(context.Background(), []Request{a, b}, got); errs[0] != nil || errs[1] != nil || got[0].Remaining != 9 || got[1].Remaining != 9 {
		t.Fatalf("peek: %v %+v", errs, got)
	}
}
