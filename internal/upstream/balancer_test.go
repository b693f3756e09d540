package upstream

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

var allKinds = []string{RoundRobin, WeightedRoundRobin, LeastConn, P2C, ConsistentHash}

// newTargets returns one healthy Target per weight, named http://t0, http://t1, ...
func newTargets(weights ...int) []*Target {
	ts := make([]*Target, len(weights))
	for i, w := range weights {
		ts[i] = NewTarget(&url.URL{Scheme: "http", Host: fmt.Sprintf("t%d", i)}, w)
	}
	return ts
}

func mustBalancer(t testing.TB, kind string, ts []*Target) Balancer {
	t.Helper()
	b, err := NewBalancer(kind, ts)
	if err != nil {
		t.Fatalf("NewBalancer(%q): %v", kind, err)
	}
	return b
}

// indexOf returns the position of p in ts, or -1 (nil or foreign Target).
func indexOf(ts []*Target, p *Target) int { return slices.Index(ts, p) }

// keyFor returns the hash key of pick i: distinct keys for consistent_hash, so that every kind
// spreads its picks.
func keyFor(i int) string { return "client-" + fmt.Sprint(i) }

// countPicks makes n picks and counts them per Target index; a nil or foreign pick fails the test.
func countPicks(t *testing.T, b Balancer, ts []*Target, n int, exclude []*Target) []int {
	t.Helper()
	counts := make([]int, len(ts))
	for i := range n {
		p := b.Pick(keyFor(i), exclude)
		idx := indexOf(ts, p)
		if idx < 0 {
			t.Fatalf("pick %d: got %v, want one of the targets", i, p)
		}
		counts[idx]++
	}
	return counts
}

func TestNewBalancerErrors(t *testing.T) {
	t.Parallel()
	type testCase struct {
		name    string
		kind    string
		targets []*Target
		wantErr []string // substrings of the error; nil means success
	}
	ok := newTargets(1, 2)
	tests := []testCase{
		{name: "unknown kind", kind: "random", targets: ok,
			wantErr: []string{`"random"`, RoundRobin, WeightedRoundRobin, LeastConn, P2C, ConsistentHash}},
		{name: "empty kind", kind: "", targets: ok, wantErr: []string{"unknown kind"}},
		{name: "kind is case sensitive", kind: "Round_Robin", targets: ok, wantErr: []string{"unknown kind"}},
		{name: "no targets", kind: RoundRobin, targets: nil, wantErr: []string{"no targets"}},
		{name: "nil target", kind: RoundRobin, targets: []*Target{ok[0], nil}, wantErr: []string{"targets[1]", "nil target"}},
		{name: "nil url", kind: LeastConn, targets: []*Target{{Weight: 1}}, wantErr: []string{"targets[0]", "no url"}},
		{name: "zero weight", kind: WeightedRoundRobin,
			targets: []*Target{ok[0], {URL: &url.URL{Scheme: "http", Host: "x"}}}, wantErr: []string{"targets[1]", "weight 0"}},
		{name: "weight above max", kind: P2C,
			targets: []*Target{{URL: &url.URL{Scheme: "http", Host: "x"}, Weight: MaxWeight + 1}}, wantErr: []string{"targets[0]", "out of range"}},
		{name: "duplicate url", kind: ConsistentHash,
			targets: []*Target{ok[0], ok[1], NewTarget(&url.URL{Scheme: "http", Host: "t0"}, 3)}, wantErr: []string{"targets[2]", "duplicates targets[0]"}},
		{name: "same target twice", kind: RoundRobin, targets: []*Target{ok[0], ok[0]}, wantErr: []string{"duplicates"}},
	}
	for _, kind := range allKinds {
		tests = append(tests,
			testCase{name: kind + " ok", kind: kind, targets: ok},
			testCase{name: kind + " single ok", kind: kind, targets: ok[:1]},
		)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewBalancer(tc.kind, tc.targets)
			if tc.wantErr == nil {
				if err != nil || b == nil {
					t.Fatalf("NewBalancer() = %v, %v; want a balancer", b, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewBalancer() succeeded, want error containing %q", tc.wantErr)
			}
			if b != nil {
				t.Errorf("NewBalancer() returned a balancer with error %v", err)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestNewBalancerCopiesTargets(t *testing.T) {
	t.Parallel()
	for _, kind := range allKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(1, 1)
			b := mustBalancer(t, kind, ts)
			orig := slices.Clone(ts)
			stranger := newTargets(1)[0]
			ts[0], ts[1] = stranger, stranger // the caller reusing its slice must not affect b
			for i := range 50 {
				if p := b.Pick(keyFor(i), nil); indexOf(orig, p) < 0 {
					t.Fatalf("pick %d = %v, want one of the original targets", i, p)
				}
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		weights   []int
		unhealthy []int
		wantSeq   []int // the first picks, by index
	}{
		{name: "plain rotation", weights: []int{1, 1, 1}, wantSeq: []int{0, 1, 2, 0, 1, 2, 0}},
		{name: "weights ignored", weights: []int{5, 1, 1}, wantSeq: []int{0, 1, 2, 0, 1, 2}},
		{name: "unhealthy target skipped in the rotation", weights: []int{1, 1, 1}, unhealthy: []int{1}, wantSeq: []int{0, 2, 0, 2, 0, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(tc.weights...)
			for _, i := range tc.unhealthy {
				ts[i].SetHealthy(false)
			}
			b := mustBalancer(t, RoundRobin, ts)
			for i, want := range tc.wantSeq {
				if got := indexOf(ts, b.Pick("", nil)); got != want {
					t.Fatalf("pick %d = t%d, want t%d", i, got, want)
				}
			}
		})
	}

	t.Run("unhealthy target's share spread over the rest", func(t *testing.T) {
		t.Parallel()
		// With one of three targets down, the two healthy ones split the traffic evenly (as
		// Envoy, HAProxy and nginx do), rather than the one after the down target taking its
		// turn as well (2/3 of the traffic).
		ts := newTargets(1, 1, 1)
		b := mustBalancer(t, RoundRobin, ts)
		ts[1].SetHealthy(false)
		counts := countPicks(t, b, ts, 3000, nil)
		if counts[0] < 1350 || counts[2] < 1350 {
			t.Fatalf("picks with t1 down: t0=%d t2=%d, want about 1500 each", counts[0], counts[2])
		}
	})

	t.Run("even over 3000 picks", func(t *testing.T) {
		t.Parallel()
		ts := newTargets(5, 1, 1)
		counts := countPicks(t, mustBalancer(t, RoundRobin, ts), ts, 3000, nil)
		if want := []int{1000, 1000, 1000}; !slices.Equal(counts, want) {
			t.Errorf("counts = %v, want %v", counts, want)
		}
	})
}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		weights    []int
		unhealthy  []int
		wantSeq    []int // one full cycle, by index
		picks      int
		wantCounts []int
	}{
		{name: "5,1,1 interleaves", weights: []int{5, 1, 1},
			wantSeq: []int{0, 0, 1, 0, 2, 0, 0}, picks: 700, wantCounts: []int{500, 100, 100}},
		{name: "equal weights rotate", weights: []int{1, 1, 1},
			wantSeq: []int{0, 1, 2}, picks: 300, wantCounts: []int{100, 100, 100}},
		{name: "3,2", weights: []int{3, 2},
			wantSeq: []int{0, 1, 0, 1, 0}, picks: 500, wantCounts: []int{300, 200}},
		{name: "unhealthy skipped", weights: []int{5, 1, 1}, unhealthy: []int{2},
			wantSeq: []int{0, 0, 0, 1, 0, 0}, picks: 600, wantCounts: []int{500, 100, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(tc.weights...)
			for _, i := range tc.unhealthy {
				ts[i].SetHealthy(false)
			}
			b := mustBalancer(t, WeightedRoundRobin, ts)
			got := make([]int, len(tc.wantSeq))
			for i := range got {
				got[i] = indexOf(ts, b.Pick("", nil))
			}
			if !slices.Equal(got, tc.wantSeq) {
				t.Errorf("first cycle = %v, want %v", got, tc.wantSeq)
			}

			b = mustBalancer(t, WeightedRoundRobin, ts)
			if counts := countPicks(t, b, ts, tc.picks, nil); !slices.Equal(counts, tc.wantCounts) {
				t.Errorf("counts over %d picks = %v, want %v", tc.picks, counts, tc.wantCounts)
			}
		})
	}
}

func TestLeastConn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		weights   []int
		inFlight  []int
		unhealthy []int
		exclude   []int
		want      int
	}{
		{name: "least loaded", weights: []int{1, 1, 1, 1}, inFlight: []int{3, 2, 0, 5}, want: 2},
		{name: "least loaded last", weights: []int{1, 1, 1}, inFlight: []int{4, 4, 1}, want: 2},
		{name: "weight aware", weights: []int{1, 3}, inFlight: []int{2, 3}, want: 1},             // 2/1 > 3/3
		{name: "weight aware, light wins", weights: []int{1, 4}, inFlight: []int{1, 5}, want: 0}, // 1/1 < 5/4
		{name: "unhealthy least loaded skipped", weights: []int{1, 1, 1}, inFlight: []int{3, 0, 2}, unhealthy: []int{1}, want: 2},
		{name: "excluded least loaded skipped", weights: []int{1, 1, 1}, inFlight: []int{3, 0, 2}, exclude: []int{1}, want: 2},
		{name: "all excluded: least loaded of them", weights: []int{1, 1, 1}, inFlight: []int{3, 1, 2}, exclude: []int{0, 1, 2}, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(tc.weights...)
			for i, n := range tc.inFlight {
				for range n {
					ts[i].Acquire()
				}
			}
			for _, i := range tc.unhealthy {
				ts[i].SetHealthy(false)
			}
			var exclude []*Target
			for _, i := range tc.exclude {
				exclude = append(exclude, ts[i])
			}
			b := mustBalancer(t, LeastConn, ts)
			for i := range 2 * len(ts) { // every rotation start must agree
				if got := indexOf(ts, b.Pick("", exclude)); got != tc.want {
					t.Fatalf("pick %d = t%d, want t%d", i, got, tc.want)
				}
			}
		})
	}

	t.Run("ties rotate", func(t *testing.T) {
		t.Parallel()
		ts := newTargets(1, 1, 1)
		counts := countPicks(t, mustBalancer(t, LeastConn, ts), ts, 300, nil)
		if want := []int{100, 100, 100}; !slices.Equal(counts, want) {
			t.Errorf("counts with no load = %v, want %v", counts, want)
		}
	})

	t.Run("follows load as it changes", func(t *testing.T) {
		t.Parallel()
		ts := newTargets(1, 1, 1)
		b := mustBalancer(t, LeastConn, ts)
		// Acquire on every pick and never release: least_conn must fill the targets evenly.
		for range 30 {
			b.Pick("", nil).Acquire()
		}
		for i, tg := range ts {
			if got := tg.InFlight(); got != 10 {
				t.Errorf("t%d in flight = %d, want 10", i, got)
			}
		}
	})
}

func TestP2C(t *testing.T) {
	t.Parallel()
	const picks = 20000
	tests := []struct {
		name     string
		weights  []int
		inFlight []int
		// Expected share of each target; the bounds are ±0.04 around it, more than 10 standard
		// deviations at 20000 picks, so the test does not flake.
		wantShare []float64
	}{
		// With distinct loads the lightest of two samples wins: target k (0-based, by load) is
		// picked when sampled with a heavier one: (n-1-k) of the n(n-1)/2 pairs.
		{name: "prefers less loaded", weights: []int{1, 1, 1, 1}, inFlight: []int{0, 1, 2, 3},
			wantShare: []float64{3.0 / 6, 2.0 / 6, 1.0 / 6, 0}},
		{name: "equal load spreads evenly", weights: []int{1, 1, 1, 1}, inFlight: []int{2, 2, 2, 2},
			wantShare: []float64{0.25, 0.25, 0.25, 0.25}},
		{name: "one idle target", weights: []int{1, 1, 1, 1}, inFlight: []int{5, 5, 0, 5},
			wantShare: []float64{1.0 / 6, 1.0 / 6, 3.0 / 6, 1.0 / 6}},
		{name: "two targets: always the lighter", weights: []int{1, 1}, inFlight: []int{4, 1},
			wantShare: []float64{0, 1}},
		{name: "weight aware", weights: []int{1, 4}, inFlight: []int{2, 4}, // 2/1 > 4/4
			wantShare: []float64{0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(tc.weights...)
			for i, n := range tc.inFlight {
				for range n {
					ts[i].Acquire()
				}
			}
			counts := countPicks(t, mustBalancer(t, P2C, ts), ts, picks, nil)
			for i, c := range counts {
				share := float64(c) / picks
				if tc.wantShare[i] == 0 {
					if c != 0 {
						t.Errorf("t%d picked %d times, want never (counts %v)", i, c, counts)
					}
					continue
				}
				if math.Abs(share-tc.wantShare[i]) > 0.04 {
					t.Errorf("t%d share = %.3f, want %.3f ± 0.04 (counts %v)", i, share, tc.wantShare[i], counts)
				}
			}
		})
	}
}

// hashKeys returns n distinct hash keys shaped like client addresses.
func hashKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	return keys
}

// mapKeys returns the URL of the Target each key maps to ("" for nil).
func mapKeys(b Balancer, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		if p := b.Pick(k, nil); p != nil {
			out[i] = p.String()
		}
	}
	return out
}

func TestConsistentHashStable(t *testing.T) {
	t.Parallel()
	ts := newTargets(1, 2, 3, 4)
	b := mustBalancer(t, ConsistentHash, ts)
	for _, key := range []string{"alice", "bob", "10.0.0.7", "session=4f2a", "x"} {
		first := b.Pick(key, nil)
		for i := range 1000 {
			if got := b.Pick(key, nil); got != first {
				t.Fatalf("key %q call %d = %v, want %v as on the first call", key, i, got, first)
			}
		}
	}

	// Another balancer (another gateway replica, or after a reload) over the same targets in a
	// different order maps every key the same way.
	keys := hashKeys(2000)
	want := mapKeys(b, keys)
	reordered := slices.Clone(ts)
	slices.Reverse(reordered)
	if got := mapKeys(mustBalancer(t, ConsistentHash, reordered), keys); !slices.Equal(got, want) {
		t.Error("reordered targets map keys differently")
	}
}

func TestConsistentHashSpread(t *testing.T) {
	t.Parallel()
	keys := hashKeys(20000)
	tests := []struct {
		name    string
		weights []int
	}{
		{name: "equal weights", weights: []int{1, 1, 1, 1}},
		{name: "weights 1,2,3,4", weights: []int{1, 2, 3, 4}},
		{name: "weights 5,1,1", weights: []int{5, 1, 1}},
		{name: "ten targets", weights: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(tc.weights...)
			b := mustBalancer(t, ConsistentHash, ts)
			counts := make([]int, len(ts))
			for _, k := range keys {
				counts[indexOf(ts, b.Pick(k, nil))]++
			}
			var total int
			for _, w := range tc.weights {
				total += w
			}
			for i, c := range counts {
				share := float64(c) / float64(len(keys))
				want := float64(tc.weights[i]) / float64(total)
				// Standard deviation at 20000 keys is at most 0.0036; ±0.02 leaves a wide margin.
				if math.Abs(share-want) > 0.02 {
					t.Errorf("t%d share = %.3f, want %.3f ± 0.02 (counts %v)", i, share, want, counts)
				}
			}
		})
	}
}

func TestConsistentHashRemoval(t *testing.T) {
	t.Parallel()
	keys := hashKeys(5000)
	for _, weights := range [][]int{{1, 1, 1, 1}, {1, 2, 3, 4}} {
		for removed := range weights {
			t.Run(fmt.Sprintf("weights %v without t%d", weights, removed), func(t *testing.T) {
				t.Parallel()
				ts := newTargets(weights...)
				before := mapKeys(mustBalancer(t, ConsistentHash, ts), keys)
				rest := slices.Delete(slices.Clone(ts), removed, removed+1)
				after := mapKeys(mustBalancer(t, ConsistentHash, rest), keys)

				gone := ts[removed].String()
				movedTo := map[string]int{}
				for i := range keys {
					switch {
					case before[i] != gone && after[i] != before[i]:
						t.Fatalf("key %q moved from %s to %s though %s was removed", keys[i], before[i], after[i], gone)
					case before[i] == gone:
						if after[i] == gone || after[i] == "" {
							t.Fatalf("key %q of removed %s maps to %q", keys[i], gone, after[i])
						}
						movedTo[after[i]]++
					}
				}
				// The removed target's keys spread over all the others, not onto one neighbour.
				if len(movedTo) != len(rest) {
					t.Errorf("keys of %s moved to %d targets (%v), want all %d others", gone, len(movedTo), movedTo, len(rest))
				}
			})
		}
	}
}

func TestConsistentHashUnhealthy(t *testing.T) {
	t.Parallel()
	keys := hashKeys(5000)
	ts := newTargets(1, 2, 3, 4)
	b := mustBalancer(t, ConsistentHash, ts)
	before := mapKeys(b, keys)

	// An unhealthy target's keys go where they would go if it were removed, and only they move.
	ts[2].SetHealthy(false)
	withoutT2 := mapKeys(mustBalancer(t, ConsistentHash, slices.Delete(slices.Clone(ts), 2, 3)), keys)
	if got := mapKeys(b, keys); !slices.Equal(got, withoutT2) {
		t.Error("with t2 unhealthy, keys map differently from a balancer without t2")
	}
	var moved int
	for i := range keys {
		if before[i] == ts[2].String() {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no key mapped to t2 before it was marked unhealthy")
	}

	// Recovery brings every key back.
	ts[2].SetHealthy(true)
	if got := mapKeys(b, keys); !slices.Equal(got, before) {
		t.Error("after t2 recovered, keys map differently from before")
	}
}

func TestConsistentHashEmptyKeyRotates(t *testing.T) {
	t.Parallel()
	ts := newTargets(1, 1, 1)
	b := mustBalancer(t, ConsistentHash, ts)
	counts := make([]int, len(ts))
	for range 300 {
		counts[indexOf(ts, b.Pick("", nil))]++
	}
	if want := []int{100, 100, 100}; !slices.Equal(counts, want) {
		t.Errorf("counts for empty key = %v, want %v", counts, want)
	}
}

func TestExclude(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		unhealthy []int
		exclude   []int
		foreign   bool  // add a Target the balancer does not know to exclude
		want      []int // the allowed picks; every one of them must occur
	}{
		{name: "one excluded", exclude: []int{0}, want: []int{1, 2}},
		{name: "two excluded", exclude: []int{0, 2}, want: []int{1}},
		{name: "all excluded falls back to them", exclude: []int{0, 1, 2}, want: []int{0, 1, 2}},
		{name: "healthy ones excluded falls back to them", unhealthy: []int{1}, exclude: []int{0, 2}, want: []int{0, 2}},
		{name: "excluded and unhealthy", unhealthy: []int{1}, exclude: []int{0}, want: []int{2}},
		{name: "foreign target ignored", exclude: []int{1}, foreign: true, want: []int{0, 2}},
		{name: "empty exclude", exclude: []int{}, want: []int{0, 1, 2}},
	}
	for _, kind := range allKinds {
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				ts := newTargets(1, 2, 3)
				for _, i := range tc.unhealthy {
					ts[i].SetHealthy(false)
				}
				exclude := []*Target{}
				for _, i := range tc.exclude {
					exclude = append(exclude, ts[i])
				}
				if tc.foreign {
					exclude = append(exclude, newTargets(1)[0])
				}
				b := mustBalancer(t, kind, ts)
				counts := make([]int, len(ts))
				for i := range 600 {
					p := b.Pick(keyFor(i), exclude)
					idx := indexOf(ts, p)
					if !slices.Contains(tc.want, idx) {
						t.Fatalf("pick %d = %v, want one of %v", i, p, tc.want)
					}
					counts[idx]++
					if i%2 == 0 { // load picks unevenly so least_conn and p2c move on
						p.Acquire()
					}
				}
				for _, i := range tc.want {
					if counts[i] == 0 {
						t.Errorf("t%d never picked (counts %v)", i, counts)
					}
				}
			})
		}
	}
}

func TestUnhealthySkipped(t *testing.T) {
	t.Parallel()
	for _, kind := range allKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(1, 1, 1, 1)
			ts[1].SetHealthy(false)
			ts[3].SetHealthy(false)
			b := mustBalancer(t, kind, ts)
			counts := countPicks(t, b, ts, 400, nil)
			if counts[1] != 0 || counts[3] != 0 || counts[0] == 0 || counts[2] == 0 {
				t.Errorf("counts = %v, want t1 and t3 never picked, t0 and t2 picked", counts)
			}

			ts[1].SetHealthy(true)
			if counts := countPicks(t, b, ts, 400, nil); counts[1] == 0 {
				t.Errorf("counts after t1 recovered = %v, want t1 picked", counts)
			}
		})
	}
}

func TestAllUnhealthy(t *testing.T) {
	t.Parallel()
	for _, kind := range allKinds {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/%d targets", kind, n), func(t *testing.T) {
				t.Parallel()
				ts := newTargets(slices.Repeat([]int{1}, n)...)
				for _, tg := range ts {
					tg.SetHealthy(false)
				}
				b := mustBalancer(t, kind, ts)
				for i := range 20 {
					for _, exclude := range [][]*Target{nil, ts[:1], ts} {
						if p := b.Pick(keyFor(i), exclude); p != nil {
							t.Fatalf("Pick with all targets unhealthy = %v, want nil", p)
						}
					}
				}
				ts[n-1].SetHealthy(true)
				if p := b.Pick("k", ts); p != ts[n-1] {
					t.Errorf("Pick after t%d recovered = %v, want it", n-1, p)
				}
			})
		}
	}
}

func TestSingleTarget(t *testing.T) {
	t.Parallel()
	for _, kind := range allKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(3)
			b := mustBalancer(t, kind, ts)
			for _, exclude := range [][]*Target{nil, ts} {
				for i := range 10 {
					if p := b.Pick(keyFor(i), exclude); p != ts[0] {
						t.Fatalf("Pick(exclude=%v) = %v, want the only target", exclude, p)
					}
				}
			}
			ts[0].SetHealthy(false)
			if p := b.Pick("k", nil); p != nil {
				t.Errorf("Pick with the only target unhealthy = %v, want nil", p)
			}
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	// Not parallel: AllocsPerRun measures the whole process.
	for _, kind := range allKinds {
		for _, weights := range [][]int{{1}, {1, 1, 1, 1}, {1, 2, 3, 4}} {
			t.Run(fmt.Sprintf("%s/%v", kind, weights), func(t *testing.T) {
				ts := newTargets(weights...)
				ts[0].SetHealthy(false)
				b := mustBalancer(t, kind, ts)
				exclude := []*Target{ts[len(ts)-1]}
				for _, key := range []string{"", "client-42"} {
					for _, ex := range [][]*Target{nil, exclude} {
						if n := testing.AllocsPerRun(200, func() { b.Pick(key, ex) }); n != 0 {
							t.Errorf("Pick(%q, %d excluded) allocates %.1f times, want 0", key, len(ex), n)
						}
					}
				}
			})
		}
	}
}

func TestConcurrentPick(t *testing.T) {
	t.Parallel()
	const goroutines, picks = 32, 2000
	for _, kind := range allKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ts := newTargets(1, 2, 3, 4)
			b := mustBalancer(t, kind, ts)
			done := make(chan struct{})
			var flapper sync.WaitGroup
			flapper.Go(func() { // health checks flip t1 while requests are picking
				for healthy := false; ; healthy = !healthy {
					select {
					case <-done:
						ts[1].SetHealthy(true)
						return
					default:
						ts[1].SetHealthy(healthy)
					}
				}
			})

			var counts [4]int64
			var mu sync.Mutex
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					var local [4]int64
					var exclude []*Target
					for i := range picks {
						p := b.Pick(keyFor(g*picks+i), exclude)
						idx := indexOf(ts, p)
						if idx < 0 {
							t.Errorf("pick = %v, want a target (t0, t2, t3 are always healthy)", p)
							return
						}
						local[idx]++
						p.Acquire()
						exclude = append(exclude[:0], p) // a retry would avoid this one
						p.Release()
					}
					mu.Lock()
					for i := range local {
						counts[i] += local[i]
					}
					mu.Unlock()
				})
			}
			wg.Wait()
			close(done)
			flapper.Wait()

			var total int64
			for i, c := range counts {
				total += c
				if i != 1 && c == 0 {
					t.Errorf("t%d never picked (counts %v)", i, counts)
				}
				if got := ts[i].InFlight(); got != 0 {
					t.Errorf("t%d in flight = %d after all releases, want 0", i, got)
				}
			}
			if total != goroutines*picks {
				t.Errorf("total picks = %d, want %d", total, goroutines*picks)
			}
		})
	}
}

func BenchmarkPick(b *testing.B) {
	keys := hashKeys(1024)
	cases := []struct {
		name    string
		kind    string
		weights []int
	}{
		{name: RoundRobin, kind: RoundRobin, weights: []int{1, 2, 3, 4}},
		{name: WeightedRoundRobin, kind: WeightedRoundRobin, weights: []int{1, 2, 3, 4}},
		{name: LeastConn, kind: LeastConn, weights: []int{1, 2, 3, 4}},
		{name: P2C, kind: P2C, weights: []int{1, 2, 3, 4}},
		{name: ConsistentHash, kind: ConsistentHash, weights: []int{1, 2, 3, 4}},
		{name: ConsistentHash + "_equal_weights", kind: ConsistentHash, weights: []int{1, 1, 1, 1}},
		{name: "single", kind: RoundRobin, weights: []int{1}},
	}
	for _, bc := range cases {
		ts := newTargets(bc.weights...)
		bal := mustBalancer(b, bc.kind, ts)
		exclude := ts[:1]
		b.Run(bc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bal.Pick(keys[i&1023], nil)
				i++
			}
		})
		b.Run(bc.name+"/serial_exclude", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bal.Pick(keys[i&1023], exclude)
				i++
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					t := bal.Pick(keys[i&1023], nil)
					t.Acquire()
					t.Release()
					i++
				}
			})
		})
	}
}
