package runtime

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestCompiledTableGolden pins config → compiled route table: precedence order, services,
// rewrites, effective timeouts. Run with -args -update after an intended change.
func TestCompiledTableGolden(t *testing.T) {
	for _, name := range []string{"gateway"} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join("testdata", name+".yaml")
			cfg, err := config.LoadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			rt, err := Compile(cfg, Deps{Registry: upstream.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Close()
			got := rt.Describe()
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run: go test ./internal/runtime -run Golden -args -update)", err)
			}
			if got != string(want) {
				t.Errorf("compiled table differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}
