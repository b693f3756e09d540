package gctune

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 400},
		{1 << 20, 400},   // 16 MiB headroom on 1 MiB: capped
		{5 << 20, 320},   // goal 5 + 16 MiB
		{8 << 20, 200},   // goal 8 + 16 MiB
		{16 << 20, 100},  // from Headroom on: the default
		{512 << 20, 100}, // a large cache: the default
		{12 << 20, 133},  // 16/12
	} {
		if got := Percent(tc.live, Headroom); got != tc.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
	}
}

func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC runs collections until GOGC satisfies ok (the cleanup runs on its own goroutine
// after the cycle), or fails after a few seconds.
func waitGOGC(t *testing.T, ok func(int) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(gogc()) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC = %d, want %s", gogc(), what)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

var keep [][]byte

func TestTunerFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)

	stop := Start()
	// A small live heap (the test binary's few MiB): more than the default.
	waitGOGC(t, func(p int) bool { return p > 150 }, "> 150 with a small live heap")

	// A live heap larger than Headroom: back to the default.
	for range 48 {
		keep = append(keep, make([]byte, 1<<20))
	}
	waitGOGC(t, func(p int) bool { return p == 100 }, "100 with 48 MiB live")

	// Released again: raised again.
	keep = nil
	waitGOGC(t, func(p int) bool { return p > 150 }, "> 150 after the heap shrank")

	stop()
	if p := gogc(); p != 100 {
		t.Fatalf("after stop GOGC = %d, want the previous 100", p)
	}
	// Stopped: collections no longer change it.
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if p := gogc(); p != 100 {
		t.Fatalf("stopped tuner changed GOGC to %d", p)
	}
	stop() // idempotent
}

func TestEnvironmentWins(t *testing.T) {
	t.Setenv("GOGC", "100")
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	stop := Start()
	defer stop()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if p := gogc(); p != 100 {
		t.Fatalf("GOGC = %d with GOGC set in the environment, want it untouched (100)", p)
	}
}
