package upstream

import (
	"net/url"
	"sync"
	"testing"
)

func TestNewTarget(t *testing.T) {
	t.Parallel()
	u := &url.URL{Scheme: "http", Host: "10.0.0.1:8080"}
	tests := []struct {
		name       string
		weight     int
		wantWeight int
	}{
		{name: "weight kept", weight: 5, wantWeight: 5},
		{name: "one", weight: 1, wantWeight: 1},
		{name: "zero clamped to one", weight: 0, wantWeight: 1},
		{name: "negative clamped to one", weight: -3, wantWeight: 1},
		{name: "max kept", weight: MaxWeight, wantWeight: MaxWeight},
		{name: "above max clamped", weight: MaxWeight + 1, wantWeight: MaxWeight},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := NewTarget(u, tc.weight)
			if tg.URL != u {
				t.Errorf("URL = %v, want %v", tg.URL, u)
			}
			if tg.Weight != tc.wantWeight {
				t.Errorf("Weight = %d, want %d", tg.Weight, tc.wantWeight)
			}
			if !tg.Healthy() {
				t.Error("new target is unhealthy, want healthy")
			}
			if got := tg.InFlight(); got != 0 {
				t.Errorf("InFlight = %d, want 0", got)
			}
		})
	}
}

func TestTargetZeroValueIsHealthy(t *testing.T) {
	t.Parallel()
	var tg Target
	if !tg.Healthy() {
		t.Error("zero Target is unhealthy, want healthy")
	}
	if got := tg.String(); got != "<nil>" {
		t.Errorf("String() = %q, want %q", got, "<nil>")
	}
}

func TestTargetHealth(t *testing.T) {
	t.Parallel()
	tg := NewTarget(&url.URL{Scheme: "http", Host: "a"}, 1)
	steps := []bool{false, false, true, false, true, true}
	for i, healthy := range steps {
		tg.SetHealthy(healthy)
		if got := tg.Healthy(); got != healthy {
			t.Fatalf("step %d: Healthy() = %v after SetHealthy(%v)", i, got, healthy)
		}
	}
}

func TestTargetInFlight(t *testing.T) {
	t.Parallel()
	tg := NewTarget(&url.URL{Scheme: "http", Host: "a"}, 1)
	tg.Acquire()
	tg.Acquire()
	tg.Acquire()
	if got := tg.InFlight(); got != 3 {
		t.Fatalf("InFlight after 3 Acquire = %d, want 3", got)
	}
	tg.Release()
	if got := tg.InFlight(); got != 2 {
		t.Fatalf("InFlight after Release = %d, want 2", got)
	}

	const goroutines, perGoroutine = 16, 1000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perGoroutine {
				tg.Acquire()
			}
			for range perGoroutine {
				tg.Release()
			}
		})
	}
	wg.Wait()
	if got := tg.InFlight(); got != 2 {
		t.Fatalf("InFlight after balanced concurrent Acquire/Release = %d, want 2", got)
	}
}

func TestTargetString(t *testing.T) {
	t.Parallel()
	tg := NewTarget(&url.URL{Scheme: "https", Host: "api.internal:8443", Path: "/v1"}, 1)
	if got, want := tg.String(), "https://api.internal:8443/v1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
