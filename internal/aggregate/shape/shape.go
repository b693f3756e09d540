// Package shape selects, removes, renames and truncates fields of decoded JSON values
// (map[string]any, []any and scalars, as encoding/json produces them). It is the "shaping" of
// the aggregation engine: the same backend data trimmed to a small payload for one client and
// kept rich for another, declaratively, without code.
//
// A path names fields with dots and arrays with brackets:
//
//	name               the field "name" of an object
//	images[].url       "url" of every element of the array "images"
//	images[0].url      "url" of the first element only
//	images.url         the same as images[].url: a field step over an array applies to each element
//	.                  the value itself (only meaningful for Limit)
//
// The package has no dependencies besides the standard library, so the config package can parse
// paths at validation time with the very code that applies them.
package shape

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// stepKind says what a path step does.
type stepKind uint8

const (
	stepKey   stepKind = iota // an object field
	stepEach                  // every element of an array: []
	stepIndex                 // one element of an array: [N]
)

type step struct {
	kind  stepKind
	key   string
	index int
}

// Path is a parsed field path. The zero Path is the root (".").
type Path struct {
	steps []step
	text  string
}

// String returns the path as written.
func (p Path) String() string {
	if p.text == "" {
		return "."
	}
	return p.text
}

// IsRoot reports whether the path is "." (the value itself).
func (p Path) IsRoot() bool { return len(p.steps) == 0 }

// KeysOnly reports whether the path consists of object fields only (no brackets): the form a
// destination of Rename or a result key must have.
func (p Path) KeysOnly() bool {
	for _, s := range p.steps {
		if s.kind != stepKey {
			return false
		}
	}
	return true
}

// maxIndex bounds [N] so that a typo cannot make the engine look for element 10^18.
const maxIndex = 1 << 20

// ParsePath parses a path; see the package comment for the syntax.
func ParsePath(s string) (Path, error) {
	if s == "." {
		return Path{}, nil
	}
	if s == "" {
		return Path{}, fmt.Errorf("empty path (use \".\" for the value itself)")
	}
	var steps []step
	for _, seg := range strings.Split(s, ".") {
		name, brackets, _ := strings.Cut(seg, "[")
		if brackets != "" || strings.HasSuffix(seg, "[") {
			brackets = "[" + brackets
		}
		if strings.ContainsAny(name, "]") {
			return Path{}, fmt.Errorf("path %q: unexpected ]", s)
		}
		if name == "" && brackets == "" {
			return Path{}, fmt.Errorf("path %q: empty field name (two dots, or a leading or trailing dot)", s)
		}
		if name != "" {
			steps = append(steps, step{kind: stepKey, key: name})
		}
		for brackets != "" {
			end := strings.IndexByte(brackets, ']')
			if !strings.HasPrefix(brackets, "[") || end < 0 {
				return Path{}, fmt.Errorf("path %q: malformed brackets (want [] or [N])", s)
			}
			inner := brackets[1:end]
			brackets = brackets[end+1:]
			if inner == "" {
				steps = append(steps, step{kind: stepEach})
				continue
			}
			n, err := strconv.Atoi(inner)
			if err != nil || n < 0 || n > maxIndex {
				return Path{}, fmt.Errorf("path %q: [%s] is not an array index (want [] or [N], N >= 0)", s, inner)
			}
			steps = append(steps, step{kind: stepIndex, index: n})
		}
	}
	return Path{steps: steps, text: s}, nil
}

// Get returns the value at p. Where a step applies to every element of an array, the result is
// the list of what was found in each element (elements without it are left out).
func Get(v any, p Path) (any, bool) { return get(v, p.steps) }

func get(v any, steps []step) (any, bool) {
	if len(steps) == 0 {
		return v, true
	}
	s := steps[0]
	switch s.kind {
	case stepKey:
		switch t := v.(type) {
		case map[string]any:
			c, ok := t[s.key]
			if !ok {
				return nil, false
			}
			return get(c, steps[1:])
		case []any:
			return getEach(t, steps)
		}
	case stepEach:
		if t, ok := v.([]any); ok {
			return getEach(t, steps[1:])
		}
	case stepIndex:
		if t, ok := v.([]any); ok && s.index < len(t) {
			return get(t[s.index], steps[1:])
		}
	}
	return nil, false
}

func getEach(arr []any, steps []step) (any, bool) {
	out := make([]any, 0, len(arr))
	for _, e := range arr {
		if c, ok := get(e, steps); ok {
			out = append(out, c)
		}
	}
	return out, true
}

// update applies fn to every value at steps, in place where it can, and returns the new v. fn
// returns the replacement and whether to keep it (false removes the field or element).
func update(v any, steps []step, fn func(any) (any, bool)) any {
	if len(steps) == 0 {
		nv, _ := fn(v)
		return nv
	}
	s, rest := steps[0], steps[1:]
	switch s.kind {
	case stepKey:
		switch t := v.(type) {
		case map[string]any:
			c, ok := t[s.key]
			if !ok {
				return v
			}
			if len(rest) == 0 {
				if nv, keep := fn(c); keep {
					t[s.key] = nv
				} else {
					delete(t, s.key)
				}
				return t
			}
			t[s.key] = update(c, rest, fn)
			return t
		case []any:
			for i := range t {
				t[i] = update(t[i], steps, fn)
			}
			return t
		}
	case stepEach:
		t, ok := v.([]any)
		if !ok {
			return v
		}
		if len(rest) == 0 {
			out := t[:0]
			for _, e := range t {
				if nv, keep := fn(e); keep {
					out = append(out, nv)
				}
			}
			return out
		}
		for i := range t {
			t[i] = update(t[i], rest, fn)
		}
		return t
	case stepIndex:
		t, ok := v.([]any)
		if !ok || s.index >= len(t) {
			return v
		}
		if len(rest) == 0 {
			nv, keep := fn(t[s.index])
			if keep {
				t[s.index] = nv
				return t
			}
			return slices.Delete(t, s.index, s.index+1)
		}
		t[s.index] = update(t[s.index], rest, fn)
		return t
	}
	return v
}

// Delete removes what p names from v (in place where it can) and returns the new v.
func Delete(v any, p Path) any {
	if p.IsRoot() {
		return nil
	}
	return update(v, p.steps, func(any) (any, bool) { return nil, false })
}

// Truncate cuts every array at p to at most n elements and returns the new v.
func Truncate(v any, p Path, n int) any {
	return update(v, p.steps, func(c any) (any, bool) {
		if arr, ok := c.([]any); ok && len(arr) > n {
			return arr[:n:n], true
		}
		return c, true
	})
}

// Set stores val at p, which must consist of object fields only, creating objects on the way
// (and replacing non-objects found there). Setting the root returns val.
func Set(v any, p Path, val any) any {
	if p.IsRoot() {
		return val
	}
	root, ok := v.(map[string]any)
	if !ok {
		root = map[string]any{}
	}
	m := root
	for i, s := range p.steps {
		if i == len(p.steps)-1 {
			m[s.key] = val
			break
		}
		next, ok := m[s.key].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[s.key] = next
		}
		m = next
	}
	return root
}

// node is a trie of selected paths.
type node struct {
	leaf  bool
	keys  map[string]*node
	each  *node
	index map[int]*node
}

func (n *node) add(steps []step) {
	if n.leaf {
		return
	}
	if len(steps) == 0 {
		*n = node{leaf: true}
		return
	}
	s := steps[0]
	var child *node
	switch s.kind {
	case stepKey:
		if n.keys == nil {
			n.keys = map[string]*node{}
		}
		if child = n.keys[s.key]; child == nil {
			child = &node{}
			n.keys[s.key] = child
		}
	case stepEach:
		if n.each == nil {
			n.each = &node{}
		}
		child = n.each
	case stepIndex:
		if n.index == nil {
			n.index = map[int]*node{}
		}
		if child = n.index[s.index]; child == nil {
			child = &node{}
			n.index[s.index] = child
		}
	}
	child.add(steps[1:])
}

// project returns the part of v the trie selects.
func (n *node) project(v any) (any, bool) {
	if n.leaf {
		return v, true
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(n.keys))
		for k, c := range n.keys {
			if cv, ok := t[k]; ok {
				if pv, ok := c.project(cv); ok {
					out[k] = pv
				}
			}
		}
		return out, true
	case []any:
		switch {
		case n.each != nil:
			return projectAll(t, n.each), true
		case len(n.index) > 0:
			idx := make([]int, 0, len(n.index))
			for i := range n.index {
				idx = append(idx, i)
			}
			sort.Ints(idx)
			out := make([]any, 0, len(idx))
			for _, i := range idx {
				if i < len(t) {
					if pv, ok := n.index[i].project(t[i]); ok {
						out = append(out, pv)
					}
				}
			}
			return out, true
		case len(n.keys) > 0:
			return projectAll(t, n), true
		}
	}
	return nil, false
}

func projectAll(arr []any, n *node) []any {
	out := make([]any, 0, len(arr))
	for _, e := range arr {
		if pv, ok := n.project(e); ok {
			out = append(out, pv)
		}
	}
	return out
}

// Shape is a compiled set of shaping rules, applied in this order: Rename (move fields to their
// output names), then Select (keep only these paths), then Omit (drop these paths), then Limit
// (truncate arrays). Select, Omit and Limit therefore name fields by their output names.
type Shape struct {
	renames []rename
	sel     *node
	omit    []Path
	limits  []limit
}

type rename struct{ from, to Path }

type limit struct {
	path Path
	n    int
}

// Spec is the uncompiled form of a Shape, as written in the config.
type Spec struct {
	Select []string
	Omit   []string
	// Rename maps a source path to a destination path of object fields only.
	Rename map[string]string
	// Limit maps an array path to the most elements kept.
	Limit map[string]int
}

// Empty reports whether the spec changes nothing.
func (s Spec) Empty() bool {
	return len(s.Select) == 0 && len(s.Omit) == 0 && len(s.Rename) == 0 && len(s.Limit) == 0
}

// Compile checks and compiles a Spec. Errors name the offending path; field is the config field
// the problem is in ("select", "omit", "rename", "limit") and key its entry.
func Compile(s Spec) (*Shape, error) {
	if s.Empty() {
		return nil, nil
	}
	sh := &Shape{}
	for _, k := range sortedKeys(s.Rename) {
		from, err := ParsePath(k)
		if err != nil {
			return nil, &SpecError{Field: "rename", Key: k, Err: err}
		}
		if from.IsRoot() {
			return nil, &SpecError{Field: "rename", Key: k, Err: fmt.Errorf("cannot rename the value itself")}
		}
		to, err := ParsePath(s.Rename[k])
		if err != nil {
			return nil, &SpecError{Field: "rename", Key: k, Err: err}
		}
		if to.IsRoot() || !to.KeysOnly() {
			return nil, &SpecError{Field: "rename", Key: k, Err: fmt.Errorf("destination %q must be a field path without brackets", s.Rename[k])}
		}
		sh.renames = append(sh.renames, rename{from, to})
	}
	if len(s.Select) > 0 {
		sh.sel = &node{}
		for i, raw := range s.Select {
			p, err := ParsePath(raw)
			if err != nil || p.IsRoot() {
				if err == nil {
					err = fmt.Errorf("selecting \".\" keeps everything; leave select out instead")
				}
				return nil, &SpecError{Field: "select", Index: i, Err: err}
			}
			sh.sel.add(p.steps)
		}
	}
	for i, raw := range s.Omit {
		p, err := ParsePath(raw)
		if err != nil || p.IsRoot() {
			if err == nil {
				err = fmt.Errorf("cannot omit the value itself")
			}
			return nil, &SpecError{Field: "omit", Index: i, Err: err}
		}
		sh.omit = append(sh.omit, p)
	}
	for _, k := range sortedKeys(s.Limit) {
		p, err := ParsePath(k)
		if err != nil {
			return nil, &SpecError{Field: "limit", Key: k, Err: err}
		}
		if s.Limit[k] < 0 {
			return nil, &SpecError{Field: "limit", Key: k, Err: fmt.Errorf("must not be negative")}
		}
		sh.limits = append(sh.limits, limit{p, s.Limit[k]})
	}
	return sh, nil
}

// SpecError locates a problem in a Spec.
type SpecError struct {
	// Field is select, omit, rename or limit.
	Field string
	// Key is the map key (rename, limit); Index the list position (select, omit).
	Key   string
	Index int
	Err   error
}

func (e *SpecError) Error() string { return e.Err.Error() }

// Apply shapes v (in place where it can; v must not be shared) and returns the result. A nil
// Shape returns v unchanged.
func (sh *Shape) Apply(v any) any {
	if sh == nil {
		return v
	}
	for _, r := range sh.renames {
		val, ok := get(v, r.from.steps)
		if !ok {
			continue
		}
		v = Delete(v, r.from)
		v = Set(v, r.to, val)
	}
	if sh.sel != nil {
		if pv, ok := sh.sel.project(v); ok {
			v = pv
		}
	}
	for _, p := range sh.omit {
		v = Delete(v, p)
	}
	for _, l := range sh.limits {
		v = Truncate(v, l.path, l.n)
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
