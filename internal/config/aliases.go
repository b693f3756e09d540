package config

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// maxExpandedNodes bounds how many YAML nodes a config may hold once its aliases are expanded.
// The largest real configs hold a few thousand; an alias bomb (each level a list of ten aliases
// to the level below) reaches millions from a few hundred bytes, and the decoder would build
// every copy.
const maxExpandedNodes = 200_000

// checkAliases returns an error at the alias that makes f's expanded size pass maxExpandedNodes,
// or nil. It walks the parsed document once, in order, remembering each anchor's expanded size,
// so that it costs the size of the text however large the expansion would be.
func checkAliases(file string, f *ast.File) *FieldError {
	w := aliasWalker{anchors: map[string]int{}}
	for _, d := range f.Docs {
		w.size(d.Body)
		if w.at != nil {
			return &FieldError{File: file, Line: w.at.Line, Col: w.at.Column,
				Msg: fmt.Sprintf("aliases expand the config to more than %d nodes", maxExpandedNodes)}
		}
	}
	return nil
}

type aliasWalker struct {
	anchors map[string]int // anchor name → expanded size of its value, as defined so far
	total   int
	at      *token.Position // where the limit was passed
}

// size walks n, adding its expanded size to the running total, and returns that size.
func (w *aliasWalker) size(n ast.Node) int {
	if n == nil || w.at != nil {
		return 0
	}
	before := w.total
	switch n := n.(type) {
	case *ast.AliasNode:
		s := 1
		if n.Value != nil {
			s = max(w.anchors[n.Value.GetToken().Value], 1)
		}
		w.add(n, s)
	case *ast.AnchorNode:
		s := w.size(n.Value)
		if n.Name != nil {
			w.anchors[n.Name.GetToken().Value] = s
		}
	case *ast.TagNode:
		w.size(n.Value)
	case *ast.MappingKeyNode:
		w.size(n.Value)
	case *ast.MappingValueNode:
		w.size(n.Key)
		w.size(n.Value)
	case *ast.MappingNode:
		w.add(n, 1)
		for _, v := range n.Values {
			w.size(v)
		}
	case *ast.SequenceNode:
		w.add(n, 1)
		for _, v := range n.Values {
			w.size(v)
		}
	default:
		w.add(n, 1)
	}
	return w.total - before
}

func (w *aliasWalker) add(n ast.Node, s int) {
	w.total += s
	if w.total > maxExpandedNodes && w.at == nil {
		w.at = &token.Position{Line: 1, Column: 1}
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			w.at = tk.Position
		}
	}
}
