package redisserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sentinel is a Sentinel setup: one master and one sentinel monitoring it (quorum 1), each a
// redis-server on a free port, killed when the test ends.
type Sentinel struct {
	// Master is the monitored redis-server.
	Master *Server
	// Sentinel is the redis-server running in sentinel mode.
	Sentinel *Server
	// MasterName is the name the sentinel knows the master by.
	MasterName string
}

// StartSentinel starts a master and a sentinel monitoring it as "gatehouse-master", and waits
// until the sentinel reports the master's address.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := Start(t)
	const name = "gatehouse-master"
	sen := startWith(t, func(s *Server) {
		// The sentinel rewrites its config file, so each start gets a fresh, writable one.
		s.conf = filepath.Join(s.dir, "sentinel-"+strconv.Itoa(s.port)+".conf")
		conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\nsentinel down-after-milliseconds %s 5000\n",
			name, master.port, name)
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			t.Fatalf("sentinel config: %v", err)
		}
		s.extra = []string{"--sentinel"}
	})
	waitFor(t, "the sentinel to know its master", func() bool {
		out, err := sen.Do("SENTINEL", "get-master-addr-by-name", name)
		return err == nil && out == "127.0.0.1\n"+strconv.Itoa(master.port)
	})
	return &Sentinel{Master: master, Sentinel: sen, MasterName: name}
}

// Cluster is a Redis Cluster of master nodes without replicas, every slot assigned, each node
// a redis-server on free ports (client and cluster bus), killed when the test ends.
type Cluster struct {
	// Nodes are the masters; Nodes[i] serves slots [i*16384/n, (i+1)*16384/n).
	Nodes []*Server
}

// StartCluster starts n (at least 3 is what Redis expects; n >= 1) cluster-enabled nodes,
// assigns them equal slot ranges, joins them with CLUSTER MEET, and waits until every node
// reports cluster_state:ok and knows all the others. It needs no redis-cli.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	for range n {
		c.Nodes = append(c.Nodes, startWith(t, func(s *Server) {
			// An explicit bus port (Redis >= 7), so the default port+10000 need not be free.
			s.busPort = freePort(t)
			s.extra = []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(s.busPort),
				"--cluster-config-file", filepath.Join(s.dir, "nodes-"+strconv.Itoa(s.port)+".conf"),
				"--cluster-node-timeout", "5000", "--cluster-require-full-coverage", "yes"}
		}))
	}
	const slots = 16384
	for i, node := range c.Nodes {
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if _, err := node.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			t.Fatalf("cluster: assigning slots %d-%d: %v", lo, hi, err)
		}
		if _, err := node.Do("CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			t.Fatalf("cluster: config epoch: %v", err)
		}
	}
	for _, node := range c.Nodes[1:] {
		if _, err := c.Nodes[0].Do("CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(node.port), strconv.Itoa(node.busPort)); err != nil {
			t.Fatalf("cluster: meet: %v", err)
		}
	}
	waitFor(t, "the cluster to be ok on every node", func() bool {
		for _, node := range c.Nodes {
			info, err := node.Do("CLUSTER", "INFO")
			if err != nil || !strings.Contains(info, "cluster_state:ok") ||
				!strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r") {
				return false
			}
		}
		return true
	})
	return c
}

// Addrs are the nodes' host:port addresses (seed addresses for a cluster client).
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, node := range c.Nodes {
		out[i] = node.Addr()
	}
	return out
}

// KeySlot returns the hash slot of key (CLUSTER KEYSLOT; the key must have no spaces).
func (c *Cluster) KeySlot(key string) (int, error) {
	out, err := c.Nodes[0].Do("CLUSTER", "KEYSLOT", key)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(out)
}

// NodeOf returns the index of the node serving key's slot.
func (c *Cluster) NodeOf(key string) (int, error) {
	slot, err := c.KeySlot(key)
	if err != nil {
		return 0, err
	}
	n := len(c.Nodes)
	for i := range n {
		if slot <= (i+1)*16384/n-1 {
			return i, nil
		}
	}
	return n - 1, nil
}

// Keys returns every key of every node matching pattern (KEYS on each node), by node.
func (c *Cluster) Keys(pattern string) ([][]string, error) {
	out := make([][]string, len(c.Nodes))
	for i, node := range c.Nodes {
		v, err := node.Do("KEYS", pattern)
		if err != nil {
			return nil, err
		}
		if v != "" {
			out[i] = strings.Split(v, "\n")
		}
	}
	return out, nil
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("redisserver: timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
