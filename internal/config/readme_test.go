package config

import (
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/parser"
)

// TestREADMEYAMLParses keeps the README's YAML examples valid YAML (they are snippets, so only
// the syntax is checked; the full example config is also loaded).
func TestREADMEYAMLParses(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```yaml\n")
	if len(blocks) < 5 {
		t.Fatalf("found only %d YAML blocks in README.md", len(blocks)-1)
	}
	for i, b := range blocks[1:] {
		end := strings.Index(b, "```")
		if end < 0 {
			t.Fatalf("block %d is not closed", i+1)
		}
		src := b[:end]
		if _, err := parser.ParseBytes([]byte(src), 0); err != nil {
			t.Errorf("README YAML block %d does not parse: %v\n%s", i+1, err, src)
		}
		if i == 0 {
			if _, err := Load("README.md example", []byte(src), nil); err != nil {
				t.Errorf("the README's minimal config does not load: %v", err)
			}
		}
	}
}
