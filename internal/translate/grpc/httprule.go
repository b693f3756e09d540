package grpc

import (
	"fmt"
	"net/url"
	"strings"
)

// pathTemplate is a compiled google.api.http path template:
//
//	Template = "/" Segments [ Verb ] ;
//	Segments = Segment { "/" Segment } ;
//	Segment  = "*" | "**" | LITERAL | Variable ;
//	Variable = "{" FieldPath [ "=" Segments ] "}" ;
//	Verb     = ":" LITERAL ;
type pathTemplate struct {
	segs []tseg
	verb string
	// literals counts literal segments: more literal templates are tried first.
	literals int
}

type tseg struct {
	kind    int    // segLiteral, segStar, segDeep
	literal string // for segLiteral
	// start and end mark the first and one-past-last segment of a variable, on the segment
	// that opens and closes it (a variable spans one or more segments).
	start, end string
}

const (
	segLiteral = iota
	segStar
	segDeep
)

// parseTemplate compiles a path template.
func parseTemplate(t string) (*pathTemplate, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, fmt.Errorf("path template %q must start with /", t)
	}
	pt := &pathTemplate{}
	rest := t[1:]
	// The verb is a ":" after the last "/" that is outside braces.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.ContainsAny(rest[i:], "/}") {
		pt.verb, rest = rest[i+1:], rest[:i]
	}
	var variable string // the variable being filled
	var varSegs int
	for rest != "" || variable != "" {
		var tok string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			tok, rest = rest[:i], rest[i+1:]
		} else {
			tok, rest = rest, ""
		}
		if strings.HasPrefix(tok, "{") {
			if variable != "" {
				return nil, fmt.Errorf("path template %q: nested variable", t)
			}
			inner := strings.TrimPrefix(tok, "{")
			name, pattern, hasPattern := strings.Cut(inner, "=")
			closed := strings.HasSuffix(name, "}")
			name = strings.TrimSuffix(name, "}")
			if name == "" {
				return nil, fmt.Errorf("path template %q: empty variable name", t)
			}
			if !hasPattern {
				if !closed {
					return nil, fmt.Errorf("path template %q: unclosed variable", t)
				}
				pt.segs = append(pt.segs, tseg{kind: segStar, start: name, end: name})
				continue
			}
			variable, varSegs, tok = name, 0, pattern
		}
		closing := variable != "" && strings.HasSuffix(tok, "}")
		tok = strings.TrimSuffix(tok, "}")
		var s tseg
		switch tok {
		case "*":
			s.kind = segStar
		case "**":
			s.kind = segDeep
		case "":
			return nil, fmt.Errorf("path template %q: empty segment", t)
		default:
			if strings.ContainsAny(tok, "{}*") {
				return nil, fmt.Errorf("path template %q: invalid segment %q", t, tok)
			}
			s.kind, s.literal = segLiteral, tok
			pt.literals++
		}
		if variable != "" {
			if varSegs == 0 {
				s.start = variable
			}
			varSegs++
			if closing {
				s.end, variable = variable, ""
			} else if rest == "" {
				return nil, fmt.Errorf("path template %q: unclosed variable", t)
			}
		}
		pt.segs = append(pt.segs, s)
	}
	for i, s := range pt.segs {
		if s.kind == segDeep && i != len(pt.segs)-1 {
			return nil, fmt.Errorf("path template %q: ** must be the last segment", t)
		}
	}
	return pt, nil
}

// match matches an escaped request path and returns the variables' values (unescaped; a
// multi-segment value keeps its "/" separators).
func (pt *pathTemplate) match(escaped string) (map[string]string, bool) {
	p := strings.TrimPrefix(escaped, "/")
	if pt.verb != "" {
		var ok bool
		if p, ok = strings.CutSuffix(p, ":"+pt.verb); !ok {
			return nil, false
		}
	}
	var parts []string
	if p != "" {
		parts = strings.Split(p, "/")
	}
	vars := map[string]string{}
	var cur string    // variable being captured
	var vals []string // its segments
	i := 0
	for _, s := range pt.segs {
		if s.start != "" {
			cur, vals = s.start, nil
		}
		switch s.kind {
		case segDeep:
			if i > len(parts) {
				return nil, false
			}
			vals = append(vals, parts[i:]...)
			i = len(parts)
		default:
			if i >= len(parts) {
				return nil, false
			}
			seg, err := url.PathUnescape(parts[i])
			if err != nil || seg == "" || (s.kind == segLiteral && seg != s.literal) {
				return nil, false
			}
			vals = append(vals, parts[i])
			i++
		}
		if s.end != "" {
			raw := strings.Join(vals, "/")
			v, err := url.PathUnescape(raw)
			if err != nil {
				return nil, false
			}
			vars[cur] = v
			cur = ""
		}
	}
	if i != len(parts) {
		return nil, false
	}
	return vars, true
}
