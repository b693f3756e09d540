package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

var depthMsg = fmt.Sprintf("collections are nested more than %d levels deep", maxDepth)

// blockNest is n block mappings, each one indented under the last.
func blockNest(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	return b.String()
}

// TestDeepNestingIsRefused checks that a document nested deeper than maxDepth is refused with
// one error at the first collection too deep, before the YAML parser (whose cost grows with the
// square of the depth) sees it. The first two inputs are the reported ones, of 30 KB and 200 KB.
func TestDeepNestingIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		data      string
		line, col int
	}{
		{"flow sequences 30 KB", "version: 1\nx: " + strings.Repeat("[", 15000) + strings.Repeat("]", 15000) + "\n", 2, 67},
		{"flow sequences 200 KB", "version: 1\nx: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n", 2, 67},
		{"flow mappings", "version: 1\nx: " + strings.Repeat("{a: ", 100) + strings.Repeat("}", 100), 2, 4 + 63*4},
		{"flow across lines", "version: 1\nx:\n" + strings.Repeat("  [\n", 100) + strings.Repeat("]", 100), 66, 3},
		{"flow in block", "a:\n  - b:\n      " + strings.Repeat("[", 100), 3, 7 + 61},
		{"compact block sequences", "version: 1\nx: y\n" + strings.Repeat("- ", 100) + "a\n", 3, 127},
		{"block mappings", blockNest(100), 65, 65},
		{"tagged and anchored", "x: " + strings.Repeat("!t [&a ", 100), 1, 7 + 63*7},
		{"after a multi-byte key", "é: " + strings.Repeat("[", 100), 1, 67},
		{"second document", "a: 1\n---\n" + strings.Repeat("[", 100), 3, 65},
		{"after a block scalar", "a: |\n   text\n  " + strings.Repeat("[", 100), 3, 3 + 63},
		{"after a comment ends a plain scalar", "a: b # c\n  " + strings.Repeat("[", 100), 2, 3 + 63},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("deep.yaml", []byte(tc.data), nil)
			var es Errors
			if !errors.As(err, &es) || len(es) != 1 {
				t.Fatalf("got %v, want one depth error", err)
			}
			want := fmt.Sprintf("deep.yaml:%d:%d: %s", tc.line, tc.col, depthMsg)
			if got := es[0].Error(); got != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
}

// TestDepthCheckCountsOnlyCollections checks that brackets, dashes and indentation inside
// scalars and comments, and nesting up to maxDepth, are not counted against the limit.
func TestDepthCheckCountsOnlyCollections(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 200)
	tests := []struct {
		name string
		data string
	}{
		{"at the limit", "x: " + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1)},
		{"block mappings at the limit", blockNest(maxDepth)},
		{"block scalar", "a: |\n  " + deep + "\n  - - - -\n" + blockNest(20) + "\nb: >-\n\n   " + deep + "\n   " + deep},
		{"block scalar in a sequence", "- |\n  " + deep + "\n- b: |2\n     " + deep},
		{"top-level block scalar", "--- |\n" + deep},
		{"indentation indicator, first line deeper", "a: |2\n     first\n   " + deep + "\nb: >-1\n   x\n " + deep},
		{"single quoted", "a: '" + deep + "''\n" + deep + "'"},
		{"double quoted", "a: \"\\\"" + deep + "\\\n" + deep + "\""},
		{"quoted in flow", "a: [\"" + deep + "\", '" + deep + "', {\"k\":\"" + deep + "\"}]"},
		{"comments", "# " + deep + "\na: b # " + deep + "\nc: [x, # " + deep + "\n  y]\n  # " + deep},
		{"plain scalar", "a: b " + deep + "\nc: http://x/" + deep},
		{"plain scalar continued", "a: b\n  " + deep + "\n\n  " + deep + "\nc:\n- d\n  " + deep},
		{"plain top-level scalar continued", "a\n" + deep},
		{"tag and anchor", "a: !t x" + deep + "\nb: &a x" + deep},
		{"apostrophe in a flow scalar", "a: [it's, x]\nb: c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if fe := checkDepth("d.yaml", []byte(tc.data)); fe != nil {
				t.Fatalf("refused: %v", fe)
			}
		})
	}
}
