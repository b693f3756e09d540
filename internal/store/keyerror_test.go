package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

// TestWrongTypeKeyDoesNotSetRedisAside: a healthy Redis answering WRONGTYPE for one key (a
// hash written under the limiter's prefix by something else) refused every other key too,
// because the failure set Redis aside for the back-off: every fail_closed limit answered 503
// and every fail_open one fell back to local counting, for as long as the bad key was hit.
// The same for the cache: one wrong-type entry turned cache reads off for everyone.
func TestWrongTypeKeyDoesNotSetRedisAside(t *testing.T) {
	srv := redisserver.Start(t)
	ctx := context.Background()
	r := newTestRedis(t, redisConfig(srv.URL()))
	if _, err := srv.Do("HSET", "t:bad", "f", "v"); err != nil {
		t.Fatal(err)
	}
	res := make([]Result, 1)
	if _, err := r.Allow(ctx, []Request{req("bad", 10, time.Second, 0)}, res); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("the wrong-type key: %v, want ErrUnavailable (its limits follow on_error)", err)
	}
	if _, err := r.Allow(ctx, []Request{req("good", 10, time.Second, 0)}, res); err != nil {
		t.Fatalf("another key, right after: %v", err)
	}

	c, err := NewRedisCache(redisConfig(srv.URL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := srv.Do("HSET", "t:c:/bad", "f", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "c:/bad"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("the wrong-type cache key: %v, want ErrUnavailable (proxied uncached)", err)
	}
	if err := c.Set(ctx, "c:/good", testEntry("x"), time.Minute); err != nil {
		t.Fatalf("another cache key, right after: %v", err)
	}
	if e, err := c.Get(ctx, "c:/good"); err != nil || e == nil {
		t.Fatalf("reading it back: %v, %v", e, err)
	}
}

// TestLogSafeKeepsCauses: a failure is logged with its cause (a Lua error ends with
// "@user_script:9", which used to replace the whole message with "redis call failed"), and a
// URL's credentials never appear.
func TestLogSafeKeepsCauses(t *testing.T) {
	for in, want := range map[string]string{
		"WRONGTYPE Operation against a key holding the wrong kind of value script: 4e2f, on @user_script:9.": "WRONGTYPE Operation against a key holding the wrong kind of value script: 4e2f, on @user_script:9.",
		"dial redis://gate:s3cret@10.0.0.5:6379: connection refused":                                         "dial redis://xxxxx@10.0.0.5:6379: connection refused",
		"rediss://:s3cret@host/0 and redis://u@h":                                                            "rediss://xxxxx@host/0 and redis://xxxxx@h",
	} {
		if got := logSafe(errors.New(in)); got != want {
			t.Errorf("logSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
