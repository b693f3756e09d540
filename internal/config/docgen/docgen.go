// Package docgen renders the configuration reference (docs/config-reference.md) from the doc
// comments of the config package's types, so the reference cannot drift from the code. It reads
// the source with go/parser and go/doc only; it does not import the config package.
package docgen

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Root is the type the walk starts from.
const Root = "Config"

// Regenerate is the command that rewrites the reference; stale-doc messages quote it.
const Regenerate = "go generate ./internal/config"

// Render parses the config package in dir (types.go, values.go and every other non-test file, so
// types added in new files are documented too) and returns the Markdown reference: one section
// per struct type reachable from Root, in depth-first field order, each with the type's doc
// comment and a table of its YAML fields, then the scalar value types they use.
func Render(dir string) ([]byte, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("docgen: %w", err)
	}
	sort.Strings(names)
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("docgen: %w", err)
		}
		files = append(files, f)
	}
	pkg, err := doc.NewFromFiles(fset, files, "github.com/gatehouse/gatehouse/internal/config", doc.PreserveAST)
	if err != nil {
		return nil, fmt.Errorf("docgen: %w", err)
	}
	g := &gen{types: map[string]typeInfo{}, seen: map[string]bool{}, usedAt: map[string][]string{}}
	for _, t := range pkg.Types {
		for _, spec := range t.Decl.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok || ts.Name.Name != t.Name {
				continue
			}
			st, _ := ts.Type.(*ast.StructType)
			custom := false
			for _, m := range t.Methods {
				custom = custom || m.Name == "UnmarshalYAML"
			}
			g.types[t.Name] = typeInfo{doc: t.Doc, st: st, custom: custom}
		}
	}
	if _, ok := g.types[Root]; !ok {
		return nil, fmt.Errorf("docgen: type %s not found in %s", Root, dir)
	}
	g.visit(Root, "")
	if len(g.unknown) > 0 {
		sort.Strings(g.unknown)
		return nil, fmt.Errorf("docgen: field types not declared in %s: %s", dir, strings.Join(g.unknown, ", "))
	}
	return g.render()
}

type typeInfo struct {
	doc    string
	st     *ast.StructType // nil unless the type is a struct
	custom bool            // has its own UnmarshalYAML
}

type field struct {
	key, typ, desc string
}

type gen struct {
	types   map[string]typeInfo
	seen    map[string]bool
	order   []string            // sections, in first-visit order
	scalars []string            // documented non-section types (Duration, ByteSize), in first-use order
	usedAt  map[string][]string // type name -> YAML paths it appears at
	fields  map[string][]field
	unknown []string // capitalized identifiers that are not declared in the package
}

// isSection reports whether a named type gets its own section: a struct decoded field by field,
// or one with its own UnmarshalYAML that still documents YAML-tagged fields (ValueMatch). Other
// types with their own UnmarshalYAML are scalar value types (Duration, ByteSize).
func (g *gen) isSection(name string) bool {
	ti, ok := g.types[name]
	if !ok || ti.st == nil {
		return false
	}
	if !ti.custom {
		return true
	}
	for _, f := range ti.st.Fields.List {
		if yamlKey(f) != "" {
			return true
		}
	}
	return false
}

// visit records the section for type name reached at YAML path and walks its fields.
func (g *gen) visit(name, path string) {
	if path != "" {
		g.usedAt[name] = append(g.usedAt[name], path)
	}
	if g.seen[name] {
		return
	}
	g.seen[name] = true
	g.order = append(g.order, name)
	if g.fields == nil {
		g.fields = map[string][]field{}
	}
	for _, f := range g.types[name].st.Fields.List {
		key := yamlKey(f)
		if key == "" {
			continue
		}
		child := key
		if path != "" {
			child = path + "." + key
		}
		g.fields[name] = append(g.fields[name], field{
			key:  key,
			typ:  g.typeString(f.Type, child),
			desc: oneLine(f.Doc.Text()),
		})
	}
}

// typeString renders a field type for the table and visits the named types inside it.
func (g *gen) typeString(e ast.Expr, path string) string {
	switch t := e.(type) {
	case *ast.Ident:
		if g.isSection(t.Name) {
			g.visit(t.Name, path)
			return fmt.Sprintf("[%s](#%s)", t.Name, anchor(t.Name))
		}
		if _, ok := g.types[t.Name]; ok {
			if !g.seen[t.Name] {
				g.seen[t.Name] = true
				g.scalars = append(g.scalars, t.Name)
			}
			return fmt.Sprintf("[%s](#%s)", scalarName(t.Name), anchor(t.Name))
		}
		if ast.IsExported(t.Name) && !slices.Contains(g.unknown, t.Name) {
			g.unknown = append(g.unknown, t.Name)
		}
		return t.Name
	case *ast.StarExpr:
		return g.typeString(t.X, path)
	case *ast.ArrayType:
		return "list of " + g.typeString(t.Elt, path+"[]")
	case *ast.MapType:
		return "map of " + g.typeString(t.Key, path) + " to " + g.typeString(t.Value, path+".<key>")
	case *ast.SelectorExpr:
		return fmt.Sprintf("%s.%s", t.X, t.Sel)
	}
	return fmt.Sprintf("%T", e)
}

func (g *gen) render() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("<!-- Code generated by internal/config/gendoc from the doc comments in internal/config. DO NOT EDIT. -->\n")
	b.WriteString("<!-- Edit the doc comments there and run: " + Regenerate + " -->\n\n")
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Gatehouse reads one YAML file (schema version 1). `${NAME}` and `${NAME:-default}` are\n")
	b.WriteString("replaced from the environment before decoding (`$$` is a literal `$`; whole-line comments are\n")
	b.WriteString("left alone), then unset fields get the defaults given below and the whole file is validated.\n")
	b.WriteString("Unknown fields are errors. Every error names the file, line, column and field path, e.g.\n")
	b.WriteString("`gatehouse.yaml:12:7: routes[1].service: unknown service \"nope\"`.\n\n")
	b.WriteString("Sections:\n\n")
	for _, name := range g.order {
		fmt.Fprintf(&b, "- [%s](#%s)\n", name, anchor(name))
	}
	if len(g.scalars) > 0 {
		b.WriteString("- [Value types](#value-types)\n")
	}
	for _, name := range g.order {
		fmt.Fprintf(&b, "\n## %s\n\n", name)
		if paths := g.usedAt[name]; len(paths) > 0 {
			quoted := make([]string, len(paths))
			for i, p := range paths {
				quoted[i] = "`" + p + "`"
			}
			fmt.Fprintf(&b, "At %s.\n\n", strings.Join(quoted, ", "))
		} else {
			b.WriteString("The top level of the file.\n\n")
		}
		if d := g.types[name].doc; d != "" {
			b.WriteString(paragraphs(d))
		}
		if len(g.fields[name]) == 0 {
			b.WriteString("No fields.\n")
			continue
		}
		b.WriteString("| field (yaml key) | type | description |\n")
		b.WriteString("| --- | --- | --- |\n")
		for _, f := range g.fields[name] {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.key, f.typ, cell(f.desc))
		}
	}
	if len(g.scalars) > 0 {
		b.WriteString("\n## Value types\n")
		for _, name := range g.scalars {
			fmt.Fprintf(&b, "\n### %s\n\n", scalarName(name))
			if d := g.types[name].doc; d != "" {
				b.WriteString(paragraphs(d))
			}
		}
	}
	return b.Bytes(), nil
}

// yamlKey returns a field's YAML key, or "" for fields that are not decoded.
func yamlKey(f *ast.Field) string {
	if f.Tag == nil || len(f.Names) != 1 || !f.Names[0].IsExported() {
		return ""
	}
	tag := strings.Trim(f.Tag.Value, "`")
	key, _, _ := strings.Cut(reflect.StructTag(tag).Get("yaml"), ",")
	if key == "-" {
		return ""
	}
	return key
}

// scalarName is how the reference calls a scalar value type: its YAML-facing name.
func scalarName(name string) string {
	switch name {
	case "Duration":
		return "duration"
	case "ByteSize":
		return "size"
	}
	return name
}

// anchor is the GitHub-style heading anchor for a section of the given name.
func anchor(name string) string { return strings.ToLower(scalarName(name)) }

// oneLine joins a comment's lines for a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cell escapes comment text for a Markdown table cell: like text, and a "|" even in a code span
// (GitHub tables split on it otherwise).
func cell(s string) string { return escape(s, true) }

// escape keeps Markdown from reading comment text as markup: outside `code spans` it escapes
// "*" (wildcards such as "/**" would turn into emphasis), "<" and ">" ("header:<Name>" would be
// an HTML tag) and backslashes.
func escape(s string, table bool) string {
	var b strings.Builder
	code := false
	for _, r := range s {
		switch {
		case r == '`':
			code = !code
		case r == '|' && table:
			b.WriteByte('\\')
		case !code && strings.ContainsRune(`\*<>|`, r):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// paragraphs re-flows a doc comment: one line per paragraph, blank lines between.
func paragraphs(s string) string {
	var out strings.Builder
	for _, p := range strings.Split(strings.TrimSpace(s), "\n\n") {
		out.WriteString(escape(oneLine(p), false))
		out.WriteString("\n\n")
	}
	return out.String()
}
