package tmpl

import (
	"encoding/json"
	"net/url"
	"testing"
)

func TestParseAndRender(t *testing.T) {
	t.Parallel()
	values := map[string]string{
		"id": "p 1", "query.limit": "5", "claims.sub": "u/7", "product.review_ids": "r1,r2", "identity.tier": "gold",
	}
	resolve := func(r *Ref) (string, bool) {
		key := r.Name
		switch r.Source {
		case Query:
			key = "query." + r.Name
		case Claims:
			key = "claims." + r.Name
		case Identity:
			key = "identity." + r.Name
		case Call:
			key = r.Call + "." + r.Name
		}
		v, ok := values[key]
		return v, ok
	}
	esc := func(_ *Ref, v string) string { return url.PathEscape(v) }
	tests := []struct {
		in, want string
	}{
		{"/static", "/static"},
		{"/products/{id}", "/products/p%201"},
		{"/users/{claims.sub}/orders", "/users/u%2F7/orders"},
		{"/reviews/{product.review_ids}", "/reviews/r1%2Cr2"},
		{"/x/{query.limit}/{query.offset|0}", "/x/5/0"},
		{"/t/{identity.tier}", "/t/gold"},
		{"{id}{id}", "p%201p%201"},
	}
	for _, tt := range tests {
		tp, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		got, err := tp.Render(resolve, esc)
		if err != nil || got != tt.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	tp, _ := Parse("/x/{query.missing}")
	if _, err := tp.Render(resolve, esc); err == nil {
		t.Fatal("a missing value without fallback rendered")
	} else if me, ok := err.(*MissingError); !ok || me.Ref.Source != Query || me.Ref.Name != "missing" {
		t.Fatalf("err = %v; want a MissingError for query.missing", err)
	}
}

func TestRefs(t *testing.T) {
	t.Parallel()
	tp, err := Parse("/a/{id}/{**}/{header.X-Client}/{product.review_ids|none}")
	if err != nil {
		t.Fatal(err)
	}
	refs := tp.Refs()
	if len(refs) != 4 || refs[0].Source != Param || refs[1].Name != "**" || refs[2].Source != Header || refs[2].Name != "X-Client" ||
		refs[3].Source != Call || refs[3].Call != "product" || refs[3].Name != "review_ids" || refs[3].Fallback != "none" {
		t.Fatalf("refs = %+v %+v %+v %+v", *refs[0], *refs[1], *refs[2], *refs[3])
	}
	if tp.Static() {
		t.Fatal("template with placeholders is static")
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"/a/{", "/a/}", "/a/{}", "/a/{b{c}}", "/a/{identity.password}", "/a/{a b}", "/a/{.x}", "/a/{x.}", "/a/{bad name.x}"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestStringify(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		json string
		want string
		ok   bool
	}{
		{`"a b"`, "a b", true},
		{`12`, "12", true},
		{`1.5`, "1.5", true},
		{`true`, "true", true},
		{`["r1", 2, false]`, "r1,2,false", true},
		{`[]`, "", false},
		{`[[1]]`, "", false},
		{`{"a":1}`, "", false},
		{`null`, "", false},
	} {
		var v any
		if err := json.Unmarshal([]byte(tt.json), &v); err != nil {
			t.Fatal(err)
		}
		got, ok := Stringify(v)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Stringify(%s) = %q, %v; want %q, %v", tt.json, got, ok, tt.want, tt.ok)
		}
	}
	if got, ok := Stringify(json.Number("12345678901234567890")); !ok || got != "12345678901234567890" {
		t.Errorf("json.Number = %q, %v", got, ok)
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"user": true, "recent_orders": true, "a-b": true, "query": false, "claims": false, "a.b": false, "": false} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("/users/{claims.sub}/orders?limit={query.limit|5}")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := Parse(s)
		if err != nil {
			return
		}
		_, _ = tp.Render(func(*Ref) (string, bool) { return "v", true }, nil)
	})
}
