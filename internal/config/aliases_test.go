package config

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// aliasBomb builds levels of "&aN [*aN-1 × 10]": a few hundred bytes that expand to 10^levels
// nodes, used as a route's method list.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("x0: &a0 [GET]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestAliasBombIsRefused(t *testing.T) {
	t.Parallel()
	for _, levels := range []int{6, 9} {
		yaml := "version: 1\n" + aliasBomb(levels) + fmt.Sprintf(`services: [{ name: s, targets: [{ url: "http://127.0.0.1:1" }] }]
routes: [{ name: r, match: { path: /**, methods: *a%d }, service: s }]
`, levels)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Load("bomb.yaml", []byte(yaml), nil)
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "aliases expand the config to more than") {
			t.Fatalf("%d levels (%d bytes): err = %v", levels, len(yaml), err)
		}
		if !strings.Contains(err.Error(), "bomb.yaml:") {
			t.Errorf("error has no position: %v", err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
			t.Errorf("%d levels: refusing the bomb allocated %d MiB", levels, grew>>20)
		}
	}
}

func TestModestAliasesStillWork(t *testing.T) {
	t.Parallel()
	yaml := `version: 1
listeners: [{ name: public, address: "127.0.0.1:0" }]
services:
  - { name: a, targets: [&target { url: "http://127.0.0.1:1" }] }
  - { name: b, targets: [*target, { url: "http://127.0.0.1:2" }] }
routes:
  - { name: r1, match: { path: /a/**, methods: &methods [GET, HEAD] }, service: a }
  - { name: r2, match: { path: /b/**, methods: *methods }, service: b }
`
	cfg, err := Load("ok.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Routes[1].Match.Methods; len(got) != 2 || got[1] != "HEAD" {
		t.Fatalf("methods through an alias: %v", got)
	}
	if got := cfg.Services[1].Targets; len(got) != 2 || got[0].URL != "http://127.0.0.1:1" {
		t.Fatalf("targets through an alias: %+v", got)
	}
}
