package auth

import (
	"net/http"
	"slices"
	"testing"
)

func TestRemoveCookie(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []string
		want []string // nil: no Cookie header left
	}{
		{"only the token", []string{"tok=x"}, nil},
		{"json and quoted kept byte for byte", []string{`a={"b":1}; tok=x; c="d e"`}, []string{`a={"b":1}; c="d e"`}},
		{"spaces around names", []string{" tok =x ;a=1"}, []string{"a=1"}},
		{"repeated token", []string{"tok=1; a=1; tok=2"}, []string{"a=1"}},
		{"several headers", []string{"tok=1", "a=1; tok=2", "b=2"}, []string{"a=1", "b=2"}},
		{"no value and empty pieces", []string{"flag;; tok; a=1;"}, []string{"flag; a=1"}},
		{"other name only", []string{"tokx=1"}, []string{"tokx=1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{Header: http.Header{"Cookie": tc.in}}
			removeCookie(r, "tok")
			got, ok := r.Header["Cookie"]
			if tc.want == nil {
				if ok {
					t.Fatalf("Cookie = %q, want no header", got)
				}
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Cookie = %q, want %q", got, tc.want)
			}
		})
	}
}
