package graphql

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNegotiate(t *testing.T) {
	t.Parallel()
	for accept, want := range map[string]string{
		"":                                  mediaJSON,
		"application/json":                  mediaJSON,
		"application/graphql-response+json": mediaGraphQLResponse,
		"application/graphql-response+json, application/json;q=0.9": mediaGraphQLResponse,
		"application/json, application/graphql-response+json;q=0.5": mediaJSON,
		"*/*":                      mediaGraphQLResponse,
		"text/html":                "",
		"application/json;q=0":     "",
		"text/html, application/*": mediaGraphQLResponse,
	} {
		if got := negotiate(accept); got != want {
			t.Errorf("negotiate(%q) = %q, want %q", accept, got, want)
		}
	}
}

func TestReferences(t *testing.T) {
	t.Parallel()
	args := map[string]any{"id": "7", "filter": map[string]any{"n": 2.0}}
	parent := map[string]any{"owner": map[string]any{"id": 12.0}, "ok": true}
	for ref, want := range map[string]string{
		"args.id": "7", "args.filter.n": "2", "parent.owner.id": "12", "parent.ok": "true", "parent.missing": "", "args.filter": `{"n":2}`,
	} {
		v, err := lookupRef(ref, args, parent)
		if err != nil || text(v) != want {
			t.Errorf("%s = %q, %v; want %q", ref, text(v), err, want)
		}
	}
	if _, err := lookupRef("other.x", args, parent); err == nil {
		t.Error("unknown scope accepted")
	}
}
