// Command gendoc writes the configuration reference (docs/config-reference.md) from the doc
// comments in internal/config. Run it through go generate ./internal/config, or:
//
//	go run ./internal/config/gendoc -o docs/config-reference.md
//	go run ./internal/config/gendoc -o docs/config-reference.md -check
//
// With -check it writes nothing and exits 1 if the file differs from what it would write.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/internal/config/docgen"
)

func main() {
	out := flag.String("o", "", "output file (default: standard output)")
	src := flag.String("src", "", "config package directory (default: internal/config of the enclosing module)")
	check := flag.Bool("check", false, "exit 1 if the -o file is not up to date instead of writing it")
	flag.Parse()
	if err := run(*src, *out, *check); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}

func run(src, out string, check bool) error {
	if src == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		src = filepath.Join(root, "internal", "config")
	}
	doc, err := docgen.Render(src)
	if err != nil {
		return err
	}
	switch {
	case check && out == "":
		return errors.New("-check needs -o")
	case check:
		have, err := os.ReadFile(out)
		if err != nil {
			return fmt.Errorf("%w; run %s", err, docgen.Regenerate)
		}
		if !bytes.Equal(have, doc) {
			return fmt.Errorf("%s is stale; run %s", out, docgen.Regenerate)
		}
		return nil
	case out == "":
		_, err := os.Stdout.Write(doc)
		return err
	}
	return os.WriteFile(out, doc, 0o644)
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; pass -src")
		}
		dir = parent
	}
}
