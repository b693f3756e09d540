package store

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

func redisConfig(url string) *config.RedisStore {
	return &config.RedisStore{URL: url, Timeout: config.Dur(200 * time.Millisecond),
		RetryAfterError: config.Dur(100 * time.Millisecond), KeyPrefix: "t:"}
}

func newTestRedis(t *testing.T, cfg *config.RedisStore) *Redis {
	t.Helper()
	r, err := NewRedis(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRedisMatchesGCRA(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t)
	r := newTestRedis(t, redisConfig(srv.URL()))
	a := req("a", 10, time.Hour, 2) // capacity 12
	b := req("b", 3, time.Hour, 0)
	for i := range 3 {
		ok, res := allow(t, r, a, b)
		if !ok || res[0].Remaining != int64(11-i) || res[1].Remaining != int64(2-i) {
			t.Fatalf("request %d: %v %+v", i, ok, res)
		}
		if res[1].Reset < time.Duration(i+1)*20*time.Minute-time.Second || res[1].Reset > time.Duration(i+1)*20*time.Minute {
			t.Fatalf("request %d: reset %v", i, res[1].Reset)
		}
	}
	ok, res := allow(t, r, a, b)
	if ok || !res[0].Allowed || res[1].Allowed || res[1].RetryAfter < 19*time.Minute || res[1].RetryAfter > 20*time.Minute {
		t.Fatalf("4th: %v %+v, want denied by b with retry ≈20m", ok, res)
	}
	// All or nothing: a was not counted by the denied request.
	_, res = allow(t, r, a)
	if res[0].Remaining != 8 {
		t.Fatalf("a remaining %d, want 8", res[0].Remaining)
	}
	ttl, err := srv.Do("PTTL", "t:b")
	if err != nil || ttl == "-1" || ttl == "-2" {
		t.Fatalf("counter key has no expiry: %q %v", ttl, err)
	}
}

func TestRedisConcurrentExact(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t)
	// Three stores (as three gateways would have) over one server.
	var stores []*Redis
	for range 3 {
		stores = append(stores, newTestRedis(t, redisConfig(srv.URL())))
	}
	lim := req("shared", 40, time.Hour, 7)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 24 {
		s := stores[i%3]
		wg.Go(func() {
			res := make([]Result, 1)
			for range 25 {
				ok, err := s.Allow(context.Background(), []Request{lim}, res)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := admitted.Load(); n != 47 {
		t.Fatalf("admitted %d of 600, want exactly 47", n)
	}
}

func TestRedisDownRecoversAndSurvivesScriptFlush(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t)
	r := newTestRedis(t, redisConfig(srv.URL()))
	lim := req("k", 100, time.Hour, 0)
	allow(t, r, lim)
	srv.Kill()
	res := make([]Result, 1)
	start := time.Now()
	_, err := r.Allow(context.Background(), []Request{lim}, res)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	// Right after a failure Redis is bypassed without a call.
	if _, err := r.Allow(context.Background(), []Request{lim}, res); !errors.Is(err, ErrUnavailable) || r.Stats().Skipped == 0 {
		t.Fatalf("second call: %v, stats %+v", err, r.Stats())
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Fatalf("failing calls took %v", d)
	}
	srv.Restart() // empty script cache: EVALSHA gets NOSCRIPT and the script is loaded again
	deadline := time.Now().Add(3 * time.Second)
	for {
		ok, err := r.Allow(context.Background(), []Request{lim}, res)
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r.Stats().Failures == 0 {
		t.Fatal("failures not counted")
	}
}

func TestRedisStalledServerTimesOut(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { <-stop; c.Close() })
		}
	}()
	t.Cleanup(func() { ln.Close(); close(stop); conns.Wait() })
	cfg := redisConfig("redis://" + ln.Addr().String())
	cfg.Timeout = config.Dur(50 * time.Millisecond)
	r := newTestRedis(t, cfg)
	start := time.Now()
	_, err = r.Allow(context.Background(), []Request{req("k", 1, time.Second, 0)}, make([]Result, 1))
	if d := time.Since(start); !errors.Is(err, ErrUnavailable) || d > 150*time.Millisecond {
		t.Fatalf("stalled call: err %v after %v, want ErrUnavailable within ~50ms", err, d)
	}
}

func TestRedisKeyNormalizedAndSecretFree(t *testing.T) {
	t.Parallel()
	a := &config.RedisStore{URL: "redis://:hunter2@h:1", Timeout: config.Dur(time.Second)}
	b := *a
	c := *a
	c.Timeout = config.Dur(2 * time.Second)
	if RedisKey(a) != RedisKey(&b) || RedisKey(a) == RedisKey(&c) {
		t.Fatal("equal configs must share a key and different ones not")
	}
	if k := RedisKey(a); len(k) > 64 || strings.Contains(k, "hunter2") {
		t.Fatalf("key %q", k)
	}
}

func BenchmarkRedisAllow(b *testing.B) {
	srv := redisserver.Start(b)
	r, err := NewRedis(redisConfig(srv.URL()), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	reqs := []Request{req("rl:bench:a", 1_000_000_000, time.Second, 0), req("rl:bench:b", 1_000_000_000, time.Second, 0)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		res := make([]Result, len(reqs))
		for pb.Next() {
			if _, err := r.Allow(context.Background(), reqs, res); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestRedisClientCancelDoesNotSetRedisAside checks that a request whose client went away while
// its limit was being checked does not mark Redis unavailable for everyone else: any client
// could otherwise keep the shared limits out of action by hanging up.
func TestRedisClientCancelDoesNotSetRedisAside(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t)
	cfg := redisConfig(srv.URL())
	cfg.RetryAfterError.Duration = 5 * time.Second
	r := newTestRedis(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := make([]Result, 1)
	if _, err := r.Allow(ctx, []Request{req("gone", 10, time.Second, 0)}, res); err == nil {
		t.Fatal("a cancelled call reported success")
	}
	ok, err := r.Allow(context.Background(), []Request{req("other", 10, time.Second, 0)}, res)
	if err != nil || !ok {
		t.Fatalf("the next caller with Redis healthy: ok=%v err=%v stats=%+v", ok, err, r.Stats())
	}
}
