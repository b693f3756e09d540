package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// nodeError is returned by the custom unmarshalers below; it carries the offending node's token
// so the loader can report file:line:col even though the decoder does not wrap it.
type nodeError struct {
	tok *token.Token
	msg string
}

func (e *nodeError) Error() string { return e.msg }

func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.IntegerNode, *ast.FloatNode:
		return v.GetToken().Value, true
	case *ast.LiteralNode:
		return v.Value.Value, true
	}
	return "", false
}

// Duration is a time.Duration written in Go syntax ("250ms", "5s", "1m30s"). A bare 0 is allowed.
type Duration struct {
	time.Duration
	set bool
}

// Set reports whether the duration was given in the config (explicit "0s" included).
func (d Duration) Set() bool { return d.set }

// Dur builds a Duration that counts as set.
func Dur(v time.Duration) Duration { return Duration{Duration: v, set: true} }

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	s, ok := scalarText(n)
	if !ok {
		return &nodeError{n.GetToken(), "expected a duration such as \"5s\""}
	}
	if s == "0" {
		*d = Duration{set: true}
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &nodeError{n.GetToken(), fmt.Sprintf("invalid duration %q (use Go syntax such as \"250ms\", \"5s\", \"1m30s\")", s)}
	}
	if v < 0 {
		return &nodeError{n.GetToken(), fmt.Sprintf("duration %q must not be negative", s)}
	}
	*d = Duration{Duration: v, set: true}
	return nil
}

// MarshalYAML renders the duration in Go syntax.
func (d Duration) MarshalYAML() ([]byte, error) { return []byte(d.Duration.String()), nil }

// ByteSize is a size in bytes, written as a number or with a unit: B, KB, MB, GB (powers of
// 1000) or KiB, MiB, GiB (powers of 1024).
type ByteSize struct {
	Bytes int64
	set   bool
}

// Set reports whether the size was given in the config.
func (b ByteSize) Set() bool { return b.set }

// Size builds a ByteSize that counts as set.
func Size(n int64) ByteSize { return ByteSize{Bytes: n, set: true} }

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses "10MiB", "512KB", "1024".
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size")
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("size too large")
	}
	return n * mult, nil
}

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (b *ByteSize) UnmarshalYAML(n ast.Node) error {
	s, ok := scalarText(n)
	if !ok {
		return &nodeError{n.GetToken(), "expected a size such as \"10MiB\""}
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return &nodeError{n.GetToken(), fmt.Sprintf("invalid size %q (use bytes or a unit: KiB, MiB, GiB, KB, MB, GB)", s)}
	}
	*b = ByteSize{Bytes: v, set: true}
	return nil
}

// MarshalYAML renders the size in bytes.
func (b ByteSize) MarshalYAML() ([]byte, error) { return []byte(strconv.FormatInt(b.Bytes, 10)), nil }

// ValueMatch is a header or query condition: an exact value, presence, or a regular expression.
type ValueMatch struct {
	// Exact value to compare with (used when the YAML value is a plain string).
	Exact string `yaml:"exact"`
	// Present requires only that the header or parameter exists.
	Present bool `yaml:"present"`
	// Regex is an RE2 expression the value must match.
	Regex string `yaml:"regex"`
	kinds int
}

// UnmarshalYAML implements yaml.NodeUnmarshaler: a scalar is an exact value, a mapping holds one
// of exact, present or regex.
func (m *ValueMatch) UnmarshalYAML(n ast.Node) error {
	if s, ok := scalarText(n); ok {
		*m = ValueMatch{Exact: s, kinds: 1}
		return nil
	}
	if _, ok := n.(*ast.BoolNode); ok {
		return &nodeError{n.GetToken(), "expected a string value (quote it: \"true\") or {present: true}"}
	}
	mn, ok := n.(*ast.MappingNode)
	if !ok {
		if mv, ok2 := n.(*ast.MappingValueNode); ok2 {
			mn = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}
		} else {
			return &nodeError{n.GetToken(), "expected a string or an object with one of exact, present, regex"}
		}
	}
	*m = ValueMatch{}
	for _, kv := range mn.Values {
		key := keyName(kv.Key)
		switch key {
		case "exact":
			s, ok := scalarText(kv.Value)
			if !ok {
				return &nodeError{kv.Value.GetToken(), "exact must be a string"}
			}
			m.Exact = s
		case "present":
			b, ok := kv.Value.(*ast.BoolNode)
			if !ok || !b.Value {
				return &nodeError{kv.Value.GetToken(), "present must be true"}
			}
			m.Present = true
		case "regex":
			s, ok := scalarText(kv.Value)
			if !ok {
				return &nodeError{kv.Value.GetToken(), "regex must be a string"}
			}
			m.Regex = s
		default:
			return &nodeError{kv.Key.GetToken(), fmt.Sprintf("unknown field %q (want exact, present or regex)", key)}
		}
		m.kinds++
	}
	if m.kinds != 1 {
		return &nodeError{n.GetToken(), "give exactly one of exact, present, regex"}
	}
	return nil
}
