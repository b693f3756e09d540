package proxy

import "testing"

// strip_prefix removes the prefix only at a segment boundary; a prefix spelled with a
// trailing slash strips the bare prefix too (the path "/api/**" matches "/api").
func TestUpstreamPathStripPrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prefix, in, want string
	}{
		{"/api", "/api/x", "/x"},
		{"/api", "/api", "/"},
		{"/api", "/apix", "/apix"},
		{"/api/", "/api/x", "/x"},
		{"/api/", "/api/", "/"},
		{"/api/", "/api", "/"},
		{"/api/", "/ap", "/ap"},
		{"/api/", "/apx", "/apx"},
		{"/api/", "/other", "/other"},
		{"/", "/x", "/x"},
		{"/", "/", "/"},
	} {
		h := &Handler{o: Options{StripPrefix: stripPrefix(tc.prefix)}}
		if got := h.upstreamPath(tc.in, nil); got != tc.want {
			t.Errorf("strip_prefix %q: %q became %q, want %q", tc.prefix, tc.in, got, tc.want)
		}
	}
}
