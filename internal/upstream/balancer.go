package upstream

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
)

// Balancer kinds, as written in a Service's `balancer` field.
const (
	// RoundRobin rotates through the healthy Targets in order and ignores their weights.
	RoundRobin = "round_robin"
	// WeightedRoundRobin is nginx's smooth weighted round robin: weights 5, 1, 1 give the sequence
	// a a b a c a a rather than a a a a a b c.
	WeightedRoundRobin = "weighted_round_robin"
	// LeastConn picks the Target with the fewest in-flight attempts per unit of weight, breaking
	// ties by rotation.
	LeastConn = "least_conn"
	// P2C (power of two choices) samples two distinct Targets at random and picks the one with
	// fewer in-flight attempts per unit of weight.
	P2C = "p2c"
	// ConsistentHash maps a hash key (client IP, header, cookie...) to a Target with weighted
	// rendezvous hashing, so a key stays on its Target while the Target set is unchanged.
	ConsistentHash = "consistent_hash"
)

const validKinds = RoundRobin + ", " + WeightedRoundRobin + ", " + LeastConn + ", " + P2C + ", " + ConsistentHash

// Balancer picks the Target for one attempt of a request. Implementations are safe for
// concurrent use and do not allocate.
type Balancer interface {
	// Pick returns the Target for the next attempt, or nil when every Target is unhealthy (the
	// caller decides what to do then). hashKey is used only by consistent_hash and is ignored by
	// the other kinds. exclude, which may be nil, lists the Targets this request's earlier
	// attempts already tried: Pick avoids them while another healthy Target exists, and falls back
	// to them otherwise.
	Pick(hashKey string, exclude []*Target) *Target
}

// NewBalancer returns a Balancer of the given kind over targets. It fails when the kind is
// unknown, targets is empty, or a Target is nil, has no URL, has a weight outside [1, MaxWeight]
// or repeats another Target's URL. The Balancer keeps its own copy of the slice and a snapshot of
// the weights.
func NewBalancer(kind string, targets []*Target) (Balancer, error) {
	switch kind {
	case RoundRobin, WeightedRoundRobin, LeastConn, P2C, ConsistentHash:
	default:
		return nil, fmt.Errorf("balancer: unknown kind %q (valid kinds: %s)", kind, validKinds)
	}
	if len(targets) == 0 {
		return nil, errors.New("balancer: no targets")
	}
	seen := make(map[string]int, len(targets))
	for i, t := range targets {
		switch {
		case t == nil:
			return nil, fmt.Errorf("balancer: targets[%d]: nil target", i)
		case t.URL == nil:
			return nil, fmt.Errorf("balancer: targets[%d]: no url", i)
		case t.Weight < 1 || t.Weight > MaxWeight:
			return nil, fmt.Errorf("balancer: targets[%d]: weight %d out of range [1, %d]", i, t.Weight, MaxWeight)
		}
		u := t.URL.String()
		if j, dup := seen[u]; dup {
			return nil, fmt.Errorf("balancer: targets[%d]: url %q duplicates targets[%d]", i, u, j)
		}
		seen[u] = i
	}

	ts := slices.Clone(targets)
	if len(ts) == 1 {
		return &single{target: ts[0]}, nil
	}
	weights := make([]int64, len(ts))
	for i, t := range ts {
		weights[i] = int64(t.Weight)
	}

	switch kind {
	case RoundRobin:
		return &roundRobin{targets: ts}, nil
	case WeightedRoundRobin:
		return &smoothWeighted{targets: ts, weights: weights, current: make([]int64, len(ts))}, nil
	case LeastConn:
		return &leastConn{targets: ts, weights: weights}, nil
	case P2C:
		return &p2c{targets: ts, weights: weights}, nil
	default: // ConsistentHash
		return newConsistentHash(ts), nil
	}
}

// excluded reports whether t is in exclude. A linear scan: exclude holds at most the few Targets
// of earlier attempts.
func excluded(exclude []*Target, t *Target) bool {
	for _, e := range exclude {
		if e == t {
			return true
		}
	}
	return false
}

// lighter reports whether load a per weight wa is strictly below load b per weight wb, without
// division. MaxWeight keeps the products far from overflow.
func lighter(a, wa, b, wb int64) bool { return a*wb < b*wa }

// single serves Services with exactly one Target, whatever the kind: there is nothing to choose
// and nothing else to prefer over an excluded Target.
type single struct{ target *Target }

var _ Balancer = (*single)(nil)

// Pick returns the only Target if it is healthy.
func (s *single) Pick(string, []*Target) *Target {
	if s.target.Healthy() {
		return s.target
	}
	return nil
}

// roundRobin is the round_robin Balancer.
type roundRobin struct {
	targets []*Target
	next    atomic.Uint64
}

var _ Balancer = (*roundRobin)(nil)

// Pick returns the next healthy, not excluded Target in rotation, else the next healthy one
// in exclude. The rotation runs over the eligible Targets only, so an unhealthy Target's share
// is spread evenly over the others rather than handed whole to the one after it.
func (b *roundRobin) Pick(_ string, exclude []*Target) *Target {
	k := b.next.Add(1) - 1
	if t := b.nth(k, exclude, true); t != nil || len(exclude) == 0 {
		return t
	}
	return b.nth(k, exclude, false)
}

// nth returns eligible Target number k modulo the number of eligible Targets, in order: the
// healthy ones, minus exclude when strict. It returns nil when none is eligible. It counts them
// first (a second pass, skipped when all are eligible, finds the one), which costs O(targets)
// per pick but no state that would have to follow health changes.
func (b *roundRobin) nth(k uint64, exclude []*Target, strict bool) *Target {
	m := 0
	for _, t := range b.targets {
		if eligible(t, exclude, strict) {
			m++
		}
	}
	switch m {
	case 0:
		return nil
	case len(b.targets):
		return b.targets[k%uint64(m)]
	}
	i := k % uint64(m)
	var last *Target
	for _, t := range b.targets {
		if !eligible(t, exclude, strict) {
			continue
		}
		if i == 0 {
			return t
		}
		i--
		last = t
	}
	return last // health changed between the passes: fewer are eligible now
}

// eligible reports whether t may be picked: healthy, and not in exclude when strict.
func eligible(t *Target, exclude []*Target, strict bool) bool {
	return t.Healthy() && (!strict || !excluded(exclude, t))
}

// smoothWeighted is the weighted_round_robin Balancer: nginx's smooth weighted round robin
// (ngx_http_upstream_get_peer). Each pick adds every eligible Target's weight to its current
// weight, picks the largest current weight and subtracts the total from it, which spreads the
// heavy Targets' turns evenly through the cycle.
type smoothWeighted struct {
	targets []*Target
	weights []int64

	mu      sync.Mutex
	current []int64 // guarded by mu
}

var _ Balancer = (*smoothWeighted)(nil)

// Pick returns the next Target of the smooth weighted sequence over the healthy Targets.
func (b *smoothWeighted) Pick(_ string, exclude []*Target) *Target {
	b.mu.Lock()
	defer b.mu.Unlock()
	best := b.step(exclude, true)
	if best < 0 && len(exclude) > 0 {
		best = b.step(exclude, false)
	}
	if best < 0 {
		return nil
	}
	return b.targets[best]
}

// step runs one round of the algorithm over the healthy Targets (minus exclude when strict) and
// returns the index picked, or -1 when no Target is eligible, in which case nothing changed.
// b.mu must be held.
func (b *smoothWeighted) step(exclude []*Target, strict bool) int {
	best := -1
	var total int64
	for i, t := range b.targets {
		if !t.Healthy() || (strict && excluded(exclude, t)) {
			continue
		}
		b.current[i] += b.weights[i]
		total += b.weights[i]
		if best < 0 || b.current[i] > b.current[best] {
			best = i
		}
	}
	if best >= 0 {
		b.current[best] -= total
	}
	return best
}

// leastConn is the least_conn Balancer.
type leastConn struct {
	targets []*Target
	weights []int64
	next    atomic.Uint64 // rotates the scan start so ties do not always go to the first Target
}

var _ Balancer = (*leastConn)(nil)

// Pick returns the healthy Target with the fewest in-flight attempts per unit of weight,
// preferring Targets not in exclude. Among equally loaded Targets it rotates.
func (b *leastConn) Pick(_ string, exclude []*Target) *Target {
	n := len(b.targets)
	start := int((b.next.Add(1) - 1) % uint64(n))
	best, fallback := -1, -1
	var bestLoad, fallbackLoad int64
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		t := b.targets[i]
		if !t.Healthy() {
			continue
		}
		load := t.InFlight()
		if excluded(exclude, t) {
			if fallback < 0 || lighter(load, b.weights[i], fallbackLoad, b.weights[fallback]) {
				fallback, fallbackLoad = i, load
			}
			continue
		}
		if best < 0 || lighter(load, b.weights[i], bestLoad, b.weights[best]) {
			best, bestLoad = i, load
		}
	}
	if best < 0 {
		best = fallback
	}
	if best < 0 {
		return nil
	}
	return b.targets[best]
}

// p2c is the p2c Balancer. It needs no shared mutable state: the random numbers come from
// math/rand/v2's top-level functions, which draw from a per-thread runtime source without a lock.
type p2c struct {
	targets []*Target
	weights []int64
}

var _ Balancer = (*p2c)(nil)

// Pick samples two distinct Targets and returns the one with fewer in-flight attempts per unit of
// weight (the first sample on a tie). A sample that is unhealthy or excluded is replaced by the
// next eligible Target after it.
func (b *p2c) Pick(_ string, exclude []*Target) *Target {
	n := uint64(len(b.targets))
	r := rand.Uint64()
	// Lemire's multiply-shift maps each 32-bit half of r onto a range without division; j is
	// drawn from the n-1 positions after i so the two samples differ.
	i := int((r & 0xffffffff) * n >> 32)
	j := (i + 1 + int((r>>32)*(n-1)>>32)) % int(n)
	for _, strict := range [2]bool{true, false} {
		if !strict && len(exclude) == 0 {
			break
		}
		a := b.next(i, exclude, strict)
		if a < 0 {
			continue
		}
		c := b.next(j, exclude, strict)
		if c != a && lighter(b.targets[c].InFlight(), b.weights[c], b.targets[a].InFlight(), b.weights[a]) {
			a = c
		}
		return b.targets[a]
	}
	return nil
}

// next returns the index of the first healthy Target at or after i (cyclically) that is not in
// exclude when strict, or -1 if there is none.
func (b *p2c) next(i int, exclude []*Target, strict bool) int {
	n := len(b.targets)
	for k := 0; k < n; k++ {
		t := b.targets[i]
		if t.Healthy() && (!strict || !excluded(exclude, t)) {
			return i
		}
		if i++; i == n {
			i = 0
		}
	}
	return -1
}

// consistentHash is the consistent_hash Balancer, using weighted rendezvous (highest random
// weight) hashing rather than a ring: every Target scores every key and the best score wins. That
// costs O(targets) per pick but needs no ring memory and is exact where a ring is approximate:
// key shares match the weights with no virtual-node variance, removing or ejecting a Target moves
// only that Target's keys (spread over the others in proportion to their weights), and the mapping
// does not depend on the order of the Targets. A Target is identified by its URL.
type consistentHash struct {
	targets []*Target
	seeds   []uint64  // hash of each Target's URL
	weights []float64 // snapshot of each Target's weight
	uniform bool      // all weights equal: rank by raw hash and skip the logarithm

	// rotation serves picks without a key (say, the hashed header is missing), so that they are
	// spread over the Targets rather than all landing on the Target of "".
	rotation roundRobin
}

var _ Balancer = (*consistentHash)(nil)

func newConsistentHash(ts []*Target) *consistentHash {
	b := &consistentHash{
		targets:  ts,
		seeds:    make([]uint64, len(ts)),
		weights:  make([]float64, len(ts)),
		uniform:  true,
		rotation: roundRobin{targets: ts},
	}
	for i, t := range ts {
		b.seeds[i] = hashString(t.URL.String())
		b.weights[i] = float64(t.Weight)
		if t.Weight != ts[0].Weight {
			b.uniform = false
		}
	}
	return b
}

// Pick returns the healthy Target that scores hashKey best, preferring Targets not in exclude.
// An empty hashKey is served by rotation.
func (b *consistentHash) Pick(hashKey string, exclude []*Target) *Target {
	if hashKey == "" {
		return b.rotation.Pick("", exclude)
	}
	key := hashString(hashKey)
	best, fallback := -1, -1
	var bestCost, fallbackCost float64
	for i, t := range b.targets {
		if !t.Healthy() {
			continue
		}
		cost := b.cost(i, key)
		if excluded(exclude, t) {
			if fallback < 0 || b.cheaper(i, cost, fallback, fallbackCost) {
				fallback, fallbackCost = i, cost
			}
			continue
		}
		if best < 0 || b.cheaper(i, cost, best, bestCost) {
			best, bestCost = i, cost
		}
	}
	if best < 0 {
		best = fallback
	}
	if best < 0 {
		return nil
	}
	return b.targets[best]
}

// cost is Target i's rendezvous cost for key; the lowest cost wins.
func (b *consistentHash) cost(i int, key uint64) float64 {
	h := rendezvousHash(key, b.seeds[i])
	if b.uniform {
		// -ln(u)/w is decreasing in h when w is the same for all, so ranking by -h is the same
		// ranking. The top 53 bits convert to float64 exactly, as in rendezvousCost.
		return -float64(h >> 11)
	}
	return rendezvousCost(h, b.weights[i])
}

// cheaper reports whether Target i with cost ci beats Target j with cost cj. Ties, which need a
// hash collision, go to the lower seed so the result does not depend on Target order.
func (b *consistentHash) cheaper(i int, ci float64, j int, cj float64) bool {
	return ci < cj || (ci == cj && b.seeds[i] < b.seeds[j])
}
