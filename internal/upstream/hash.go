package upstream

import "math"

// Hashing for the consistent_hash balancer. The functions are allocation-free and stable across
// processes and Go versions (unlike hash/maphash), so every gateway replica maps a key to the same
// Target.

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// hashString returns a well-mixed 64-bit hash of s: FNV-1a, whose low bits are weak on short
// inputs, followed by a full-avalanche finalizer.
func hashString(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return mix64(h)
}

// mix64 is the MurmurHash3 64-bit finalizer: a bijection in which every input bit affects every
// output bit.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb93fe53e87cb
	h ^= h >> 33
	return h
}

// rendezvousHash is the score hash of a (key, target) pair.
func rendezvousHash(key, seed uint64) uint64 { return mix64(key ^ seed) }

// rendezvousCost turns the pair hash h into the weighted rendezvous cost -ln(u)/weight, with u
// uniform in (0, 1). The target with the lowest cost wins, which gives each target a share of keys
// proportional to its weight (Schindelhauer & Schomaker, "Weighted distributed hash tables").
func rendezvousCost(h uint64, weight float64) float64 {
	// The top 53 bits fill a float64 mantissa exactly; +0.5 keeps u strictly inside (0, 1).
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return -math.Log(u) / weight
}
