package httpx

import (
	"net/http"
	"net/textproto"
	"slices"

	"github.com/gatehouse/gatehouse/internal/config"
)

// HeaderOps are compiled request_headers / response_headers edits: Remove, then Set, then
// Add, with canonical names, in a deterministic order.
type HeaderOps struct {
	Remove []string
	Set    [][2]string
	Add    [][2]string
}

// NewHeaderOps compiles a config's header edits.
func NewHeaderOps(h config.HeaderOps) HeaderOps {
	var o HeaderOps
	for _, k := range h.Remove {
		o.Remove = append(o.Remove, textproto.CanonicalMIMEHeaderKey(k))
	}
	for _, k := range sortedKeys(h.Set) {
		o.Set = append(o.Set, [2]string{textproto.CanonicalMIMEHeaderKey(k), h.Set[k]})
	}
	for _, k := range sortedKeys(h.Add) {
		o.Add = append(o.Add, [2]string{textproto.CanonicalMIMEHeaderKey(k), h.Add[k]})
	}
	return o
}

// Empty reports whether the ops change nothing.
func (o HeaderOps) Empty() bool { return len(o.Remove)+len(o.Set)+len(o.Add) == 0 }

// Apply edits h.
func (o HeaderOps) Apply(h http.Header) {
	for _, k := range o.Remove {
		delete(h, k)
	}
	for _, kv := range o.Set {
		h[kv[0]] = []string{kv[1]}
	}
	for _, kv := range o.Add {
		h[kv[0]] = append(h[kv[0]], kv[1])
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
