package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config/docgen"
)

const referenceDoc = "../../docs/config-reference.md"

// TestReferenceDocUpToDate fails when the doc comments in types.go or values.go changed without
// regenerating docs/config-reference.md.
func TestReferenceDocUpToDate(t *testing.T) {
	t.Parallel()
	want, err := docgen.Render(".")
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatalf("%v; run %s", err, docgen.Regenerate)
	}
	if !bytes.Equal(have, want) {
		t.Fatalf("docs/config-reference.md is stale: the config doc comments changed; run %s", docgen.Regenerate)
	}
}

// TestReferenceDocCoversEveryField checks the generator against the decoder's own view: every
// YAML key that appears in testdata/full.yaml (which sets every field) has a row in the reference.
func TestReferenceDocCoversEveryField(t *testing.T) {
	t.Parallel()
	doc, err := docgen.Render(".")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, want := range []string{
		"## Config", "## Listener", "## Server", "## AccessLog", "## Service", "## Target", "## Timeouts",
		"## Pool", "## Route", "## Match", "## ValueMatch", "## HeaderOps", "### duration", "### size",
		"| field (yaml key) | type | description |",
		"| `max_body_bytes` | [size](#size) |",
		"| `headers` | map of string to [ValueMatch](#valuematch) |",
		"| `targets` | list of [Target](#target) |",
		"At `services[].timeouts`, `routes[].timeouts`.",
		"Default: 10MiB.",
		`header:\<Name\>`, // escaped, or Markdown would read an HTML tag
	} {
		if !strings.Contains(text, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
	data, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	userKeys := map[string]bool{"debug": true, "view": true, "lang": true} // query parameter names in full.yaml
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimLeft(strings.TrimSpace(line), "- ")
		key, _, ok := strings.Cut(line, ":")
		if !ok || userKeys[key] || strings.HasPrefix(line, "#") || strings.ContainsAny(key, " {\"-") || key != strings.ToLower(key) {
			continue // comments, URLs, header names and map keys chosen by the user
		}
		if !strings.Contains(text, "| `"+key+"` |") {
			t.Errorf("reference has no row for %q", key)
		}
	}
}

func TestRenderMissingSource(t *testing.T) {
	t.Parallel()
	if _, err := docgen.Render(t.TempDir()); err == nil {
		t.Fatal("Render of a directory without types.go succeeded")
	}
}

// TestFullConfigUsesEveryField keeps testdata/full.yaml complete as fields are added: every YAML
// key in the reference must be set somewhere in it.
func TestFullConfigUsesEveryField(t *testing.T) {
	t.Parallel()
	doc, err := docgen.Render(".")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// Keys of features still being built (their types are stubs with no fields yet, so full.yaml
	// cannot set them meaningfully). Remove a key from here when full.yaml sets it.
	pending := map[string]bool{}
	full := "\n" + string(data)
	for _, line := range strings.Split(string(doc), "\n") {
		rest, ok := strings.CutPrefix(line, "| `")
		if !ok {
			continue
		}
		key, _, _ := strings.Cut(rest, "`")
		set := strings.Contains(full, " "+key+":") || strings.Contains(full, "{"+key+":") || strings.Contains(full, "\n"+key+":")
		switch {
		case !set && !pending[key]:
			t.Errorf("testdata/full.yaml does not set %q: add it (with a non-default value) and assert it in TestLoadFullConfig", key)
		case set && pending[key]:
			t.Errorf("testdata/full.yaml sets %q now: remove it from pending", key)
		}
	}
}
