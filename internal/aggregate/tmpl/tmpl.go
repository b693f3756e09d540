// Package tmpl parses and renders the templates of aggregate calls: a call's path, query values
// and header values with {placeholders} filled from the request and from earlier calls.
//
// Placeholders:
//
//	{id}                 the route's path parameter "id"
//	{**}                 what the route's trailing /** matched
//	{query.NAME}         the request's query parameter NAME (first value)
//	{header.NAME}        the request header NAME
//	{claims.PATH}        a claim of the authenticated caller (JWT claims, API-key metadata); dotted
//	{identity.FIELD}     subject, consumer, tier, issuer or method of the caller
//	{CALL.PATH}          a field of the result of the earlier call named CALL (the call then waits for it)
//	{...|fallback}       the text after | when the value is missing
//
// Strings are inserted as they are, numbers and booleans as their JSON text, arrays of those
// joined with commas. Objects, null and missing values are "missing". The package depends on
// nothing but the standard library, so the config package validates templates with this parser.
package tmpl

import (
	"fmt"
	"strconv"
	"strings"
)

// Source is where a placeholder's value comes from.
type Source uint8

// The sources of placeholder values.
const (
	Param    Source = iota // a path parameter (Name), or "**" for the rest
	Query                  // a query parameter
	Header                 // a request header
	Claims                 // a claim path
	Identity               // an identity field
	Call                   // a field of another call's result (Call names it)
)

// Namespaces that cannot be call names.
var Reserved = []string{"query", "header", "claims", "identity"}

// IdentityFields are the names allowed after "identity.".
var IdentityFields = []string{"subject", "consumer", "tier", "issuer", "method"}

// Ref is one placeholder.
type Ref struct {
	Source Source
	// Call is the referenced call's name (Source == Call).
	Call string
	// Name is the parameter, query parameter, header, claim path, identity field, or the field
	// path inside the call's result.
	Name string
	// Fallback is used when the value is missing and HasFallback is set.
	Fallback    string
	HasFallback bool
	// Text is the placeholder as written, without braces.
	Text string
}

// part is a literal (ref == nil) or a placeholder.
type part struct {
	lit string
	ref *Ref
}

// Template is a parsed template.
type Template struct {
	parts []part
	text  string
}

// String returns the template as written.
func (t *Template) String() string { return t.text }

// Refs returns the template's placeholders in order.
func (t *Template) Refs() []*Ref {
	var out []*Ref
	for _, p := range t.parts {
		if p.ref != nil {
			out = append(out, p.ref)
		}
	}
	return out
}

// Static reports whether the template has no placeholders.
func (t *Template) Static() bool {
	return len(t.parts) <= 1 && (len(t.parts) == 0 || t.parts[0].ref == nil)
}

// Parse parses a template. Braces always delimit placeholders; a template cannot contain a
// literal brace.
func Parse(s string) (*Template, error) {
	t := &Template{text: s}
	rest := s
	for rest != "" {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if rest[i] == '}' {
			return nil, fmt.Errorf("unbalanced } in %q", s)
		}
		if i > 0 {
			t.parts = append(t.parts, part{lit: rest[:i]})
		}
		j := strings.IndexAny(rest[i+1:], "{}")
		if j < 0 || rest[i+1+j] != '}' {
			return nil, fmt.Errorf("unbalanced { in %q", s)
		}
		ref, err := parseRef(rest[i+1 : i+1+j])
		if err != nil {
			return nil, err
		}
		t.parts = append(t.parts, part{ref: ref})
		rest = rest[i+1+j+1:]
	}
	return t, nil
}

func parseRef(text string) (*Ref, error) {
	r := &Ref{Text: text}
	expr := text
	if e, fb, ok := strings.Cut(text, "|"); ok {
		expr, r.Fallback, r.HasFallback = e, fb, true
	}
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return nil, fmt.Errorf("empty placeholder {%s}", text)
	}
	if expr == "**" {
		r.Source, r.Name = Param, "**"
		return r, nil
	}
	ns, name, dotted := strings.Cut(expr, ".")
	if !dotted {
		if !validName(expr) {
			return nil, fmt.Errorf("{%s}: %q is not a path parameter name", text, expr)
		}
		r.Source, r.Name = Param, expr
		return r, nil
	}
	if name == "" || ns == "" {
		return nil, fmt.Errorf("{%s}: empty name", text)
	}
	switch ns {
	case "query":
		r.Source = Query
	case "header":
		r.Source = Header
	case "claims":
		r.Source = Claims
	case "identity":
		r.Source = Identity
		if !contains(IdentityFields, name) {
			return nil, fmt.Errorf("{%s}: unknown identity field %q (want one of %s)", text, name, strings.Join(IdentityFields, ", "))
		}
	default:
		if !validName(ns) {
			return nil, fmt.Errorf("{%s}: %q is not a call name", text, ns)
		}
		r.Source, r.Call = Call, ns
	}
	r.Name = name
	return r, nil
}

// validName reports whether s is a usable parameter or call name: letters, digits, _ and -.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidName reports whether s can name a call: letters, digits, _ and -, and not a reserved
// namespace.
func ValidName(s string) bool { return validName(s) && !contains(Reserved, s) }

// Resolver returns a placeholder's value: ok is false when it is missing.
type Resolver func(r *Ref) (string, bool)

// MissingError says which placeholder had no value.
type MissingError struct{ Ref *Ref }

func (e *MissingError) Error() string { return fmt.Sprintf("no value for {%s}", e.Ref.Text) }

// Render fills the template. escape, when non-nil, is applied to every inserted value (not to
// the literal text). A missing value without a fallback is a *MissingError.
func (t *Template) Render(resolve Resolver, escape func(r *Ref, v string) string) (string, error) {
	if len(t.parts) == 1 && t.parts[0].ref == nil {
		return t.parts[0].lit, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.ref == nil {
			b.WriteString(p.lit)
			continue
		}
		v, ok := resolve(p.ref)
		if !ok {
			if !p.ref.HasFallback {
				return "", &MissingError{Ref: p.ref}
			}
			v = p.ref.Fallback
		}
		if escape != nil {
			v = escape(p.ref, v)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Stringify renders a decoded JSON value for a template: strings as they are, numbers and
// booleans as JSON text, a non-empty array of those joined with commas. Anything else (objects,
// null, empty or nested arrays) has no text form and reports false.
func Stringify(v any) (string, bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case fmt.Stringer: // json.Number
		return t.String(), true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(t), true
	case []any:
		if len(t) == 0 {
			return "", false
		}
		parts := make([]string, len(t))
		for i, e := range t {
			if _, nested := e.([]any); nested {
				return "", false
			}
			s, ok := Stringify(e)
			if !ok {
				return "", false
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}
