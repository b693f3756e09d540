package redisserver

import (
	"strings"
	"testing"
)

// TestSentinelAndCluster checks the helpers themselves: the sentinel answers with its master,
// and a key lands on the node NodeOf names.
func TestSentinelAndCluster(t *testing.T) {
	s := StartSentinel(t)
	if out, err := s.Sentinel.Do("SENTINEL", "get-master-addr-by-name", s.MasterName); err != nil || !strings.HasSuffix(out, "\n"+strings.Split(s.Master.Addr(), ":")[1]) {
		t.Fatalf("sentinel: %q %v", out, err)
	}
	c := StartCluster(t, 3)
	for _, key := range []string{"a", "b", "c", "{tag}x", "{tag}y", "k5461"} {
		i, err := c.NodeOf(key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Nodes[i].Do("SET", key, "1"); err != nil {
			t.Fatalf("SET %s on node %d: %v", key, i, err)
		}
		other := c.Nodes[(i+1)%3]
		if _, err := other.Do("SET", key, "1"); err == nil || !strings.Contains(err.Error(), "MOVED") {
			t.Fatalf("SET %s on a wrong node: %v, want MOVED", key, err)
		}
	}
	keys, err := c.Keys("*")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, k := range keys {
		total += len(k)
	}
	if total != 6 {
		t.Fatalf("keys by node %v", keys)
	}
}
