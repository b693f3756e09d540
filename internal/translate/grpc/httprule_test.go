package grpc

import (
	"maps"
	"testing"
)

func TestPathTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl, path string
		ok         bool
		vars       map[string]string
	}{
		{"/v1/users/{id}", "/v1/users/42", true, map[string]string{"id": "42"}},
		{"/v1/users/{id}", "/v1/users/a%20b", true, map[string]string{"id": "a b"}},
		{"/v1/users/{id}", "/v1/users", false, nil},
		{"/v1/users/{id}", "/v1/users/1/x", false, nil},
		{"/v1/users/{id}", "/v1/users/", false, nil},
		{"/v1/{name=shelves/*}/books/{book}", "/v1/shelves/s1/books/b2", true, map[string]string{"name": "shelves/s1", "book": "b2"}},
		{"/v1/{name=shelves/*}/books/{book}", "/v1/racks/s1/books/b2", false, nil},
		{"/v1/{path=**}", "/v1/a/b/c", true, map[string]string{"path": "a/b/c"}},
		{"/v1/files/**", "/v1/files", true, map[string]string{}},
		{"/v1/users:search", "/v1/users:search", true, map[string]string{}},
		{"/v1/users:search", "/v1/users", false, nil},
		{"/v1/users/{id}:undelete", "/v1/users/7:undelete", true, map[string]string{"id": "7"}},
		{"/v1/*/x", "/v1/anything/x", true, map[string]string{}},
		{"/v1/users/{user.id}", "/v1/users/9", true, map[string]string{"user.id": "9"}},
	}
	for _, tt := range tests {
		pt, err := parseTemplate(tt.tmpl)
		if err != nil {
			t.Fatalf("parse %q: %v", tt.tmpl, err)
		}
		vars, ok := pt.match(tt.path)
		if ok != tt.ok || (ok && !maps.Equal(vars, tt.vars)) {
			t.Errorf("%q.match(%q) = %v, %v; want %v, %v", tt.tmpl, tt.path, vars, ok, tt.vars, tt.ok)
		}
	}
	for _, bad := range []string{"v1/x", "/v1/{id", "/v1/{}", "/v1/**/x", "/v1//x", "/v1/{a={b}}", "/v1/{a=x"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("parseTemplate(%q) accepted", bad)
		}
	}
}

// FuzzPathTemplate: parsing and matching never panic, and a template matches what it was
// built to accept.
func FuzzPathTemplate(f *testing.F) {
	f.Add("/v1/{name=shelves/*}/books/{book}", "/v1/shelves/1/books/2")
	f.Add("/v1/{p=**}:verb", "/v1/a/b:verb")
	f.Add("/{a}", "/%zz")
	f.Fuzz(func(t *testing.T, tmpl, path string) {
		pt, err := parseTemplate(tmpl)
		if err != nil {
			return
		}
		_, _ = pt.match(path)
	})
}
