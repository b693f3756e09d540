package shape

import (
	"encoding/json"
	"testing"
)

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

func encode(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const product = `{"id":"p1","name":"Keyboard","price":89,"full_description":"long text","internal":"x",
 "images":[{"thumbnail_url":"t1","full_url":"f1"},{"thumbnail_url":"t2","full_url":"f2"}],
 "reviews":[{"id":1,"author":{"name":"a","email":"a@x"}},{"id":2,"author":{"name":"b","email":"b@x"}},{"id":3,"author":{"name":"c","email":"c@x"}}]}`

func TestApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec Spec
		in   string
		want string
	}{
		{"select top-level", Spec{Select: []string{"id", "name"}}, product, `{"id":"p1","name":"Keyboard"}`},
		{"select through arrays implicitly", Spec{Select: []string{"id", "reviews.author.name"}}, product,
			`{"id":"p1","reviews":[{"author":{"name":"a"}},{"author":{"name":"b"}},{"author":{"name":"c"}}]}`},
		{"select with [] and [N]", Spec{Select: []string{"images[].full_url", "reviews[1].id"}}, product,
			`{"images":[{"full_url":"f1"},{"full_url":"f2"}],"reviews":[{"id":2}]}`},
		{"omit nested in arrays", Spec{Omit: []string{"reviews[].author.email", "internal", "images", "full_description"}}, product,
			`{"id":"p1","name":"Keyboard","price":89,"reviews":[{"author":{"name":"a"},"id":1},{"author":{"name":"b"},"id":2},{"author":{"name":"c"},"id":3}]}`},
		{"mobile: rename from an indexed element then select", Spec{
			Rename: map[string]string{"images[0].thumbnail_url": "thumbnail"},
			Select: []string{"id", "name", "price", "thumbnail"}}, product,
			`{"id":"p1","name":"Keyboard","price":89,"thumbnail":"t1"}`},
		{"web: rename collects a list, limit", Spec{
			Rename: map[string]string{"images[].full_url": "images", "full_description": "description"},
			Select: []string{"id", "description", "images", "reviews"},
			Limit:  map[string]int{"reviews": 2, "images": 1}}, product,
			`{"description":"long text","id":"p1","images":["f1"],"reviews":[{"author":{"email":"a@x","name":"a"},"id":1},{"author":{"email":"b@x","name":"b"},"id":2}]}`},
		{"rename to a nested destination", Spec{Rename: map[string]string{"price": "pricing.amount"}, Select: []string{"pricing"}}, product,
			`{"pricing":{"amount":89}}`},
		{"limit the root array", Spec{Limit: map[string]int{".": 1}}, `[1,2,3]`, `[1]`},
		{"missing paths change nothing", Spec{Omit: []string{"nope.x"}, Rename: map[string]string{"nope": "x"}, Limit: map[string]int{"nope": 1}}, `{"a":1}`, `{"a":1}`},
		{"select on a root array", Spec{Select: []string{"id"}}, `[{"id":1,"x":2},{"id":3}]`, `[{"id":1},{"id":3}]`},
		{"select keeps missing fields out", Spec{Select: []string{"a", "b.c"}}, `{"a":null,"b":7}`, `{"a":null}`},
		{"omit an array element", Spec{Omit: []string{"a[1]"}}, `{"a":[1,2,3]}`, `{"a":[1,3]}`},
		{"scalar through select is untouched", Spec{Select: []string{"a"}}, `5`, `5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sh, err := Compile(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := encode(t, sh.Apply(decode(t, tt.in))); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestNilShapeIsIdentity(t *testing.T) {
	t.Parallel()
	sh, err := Compile(Spec{})
	if err != nil || sh != nil {
		t.Fatalf("empty spec = %v, %v; want nil, nil", sh, err)
	}
	if got := encode(t, sh.Apply(decode(t, product))); got != encode(t, decode(t, product)) {
		t.Fatalf("nil shape changed the value: %s", got)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	v := decode(t, product)
	for _, tt := range []struct {
		path string
		want string
		ok   bool
	}{
		{"id", `"p1"`, true},
		{"images[0].thumbnail_url", `"t1"`, true},
		{"images[].full_url", `["f1","f2"]`, true},
		{"reviews.author.name", `["a","b","c"]`, true},
		{"images[5].full_url", ``, false},
		{"nope", ``, false},
		{"id.x", ``, false},
		{".", encode(t, v), true},
	} {
		p, err := ParsePath(tt.path)
		if err != nil {
			t.Fatalf("%s: %v", tt.path, err)
		}
		got, ok := Get(v, p)
		if ok != tt.ok || ok && encode(t, got) != tt.want {
			t.Errorf("Get(%s) = %s, %v; want %s, %v", tt.path, encode(t, got), ok, tt.want, tt.ok)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "a..b", ".a", "a.", "a[", "a[x]", "a[-1]", "a]b", "a[1", "a[99999999]"} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) succeeded", bad)
		}
	}
	for _, good := range []string{".", "a", "a.b", "a[]", "a[0].b", "[0]", "[].x", "a[][1]"} {
		if _, err := ParsePath(good); err != nil {
			t.Errorf("ParsePath(%q): %v", good, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		spec  Spec
		field string
	}{
		{Spec{Select: []string{"a", "b..c"}}, "select"},
		{Spec{Select: []string{"."}}, "select"},
		{Spec{Omit: []string{"."}}, "omit"},
		{Spec{Rename: map[string]string{"a": "b[0]"}}, "rename"},
		{Spec{Rename: map[string]string{".": "b"}}, "rename"},
		{Spec{Limit: map[string]int{"a": -1}}, "limit"},
	} {
		_, err := Compile(tt.spec)
		se, ok := err.(*SpecError)
		if !ok || se.Field != tt.field {
			t.Errorf("Compile(%+v) = %v; want a SpecError in %s", tt.spec, err, tt.field)
		}
	}
}

// FuzzShape feeds arbitrary paths and JSON through every operation: nothing may panic.
func FuzzShape(f *testing.F) {
	f.Add("images[0].thumbnail_url", "reviews", product)
	f.Add("[].a[]", ".", `[[1],[2,{"a":[3]}]]`)
	f.Fuzz(func(t *testing.T, p1, p2, doc string) {
		var v any
		if json.Unmarshal([]byte(doc), &v) != nil {
			return
		}
		sh, err := Compile(Spec{Select: []string{p1}, Omit: []string{p2}, Rename: map[string]string{p1: "x.y"}, Limit: map[string]int{p2: 1}})
		if err == nil {
			_ = sh.Apply(v)
		}
		if p, err := ParsePath(p1); err == nil {
			_, _ = Get(v, p)
			_ = Delete(v, p)
		}
	})
}
