package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// FieldError is one configuration problem, located in the source file.
type FieldError struct {
	File string
	Line int
	Col  int
	// Path is the field path, e.g. "routes[3].match.path".
	Path string
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d:", e.Line, e.Col)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a config; it is returned as one error.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Source is a decoded config together with what is needed to point at its lines.
type Source struct {
	File   string
	Config *Config
	pos    *positions
}

// LoadFile reads, decodes, defaults and validates a config file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Load(path, data, os.LookupEnv)
}

// Load decodes, defaults and validates a config held in memory. file names it in errors;
// lookupEnv resolves ${NAME} and ${NAME:-default} references (nil: none are set).
func Load(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	src, err := Decode(file, data, lookupEnv)
	if err != nil {
		return nil, err
	}
	src.Config.ApplyDefaults()
	if errs := src.Validate(); len(errs) > 0 {
		return nil, errs
	}
	return src.Config, nil
}

// Decode performs env substitution and strict decoding, without defaults or validation.
func Decode(file string, data []byte, lookupEnv func(string) (string, bool)) (*Source, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	data, errs := substituteEnv(file, data, lookupEnv)
	if len(errs) > 0 {
		return nil, errs
	}
	// The YAML parser's time and memory grow with the square of the nesting depth (30 KB of
	// "[" cost a gigabyte), so a document nested deeper than any config needs is refused first.
	if fe := checkDepth(file, data); fe != nil {
		return nil, Errors{fe}
	}
	var f *ast.File
	err := guard(func() (err error) { f, err = parser.ParseBytes(data, 0); return err })
	if err != nil {
		// A duplicate key fails the parse; index a lenient parse so the error still names its field.
		var pos *positions
		var lf *ast.File
		if guard(func() (err error) { lf, err = parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey()); return err }) == nil {
			pos = indexPositions(lf)
		}
		fe := tokenError(file, pos, err)
		fe.Msg += syntaxHint(data, fe.Line)
		return nil, Errors{fe}
	}
	// Aliases are expanded by the decoder: a few hundred bytes of nested aliases would build
	// gigabytes, so their expanded size is measured on the parsed text first.
	if fe := checkAliases(file, f); fe != nil {
		return nil, Errors{fe}
	}
	pos := indexPositions(f)
	var cfg Config
	if err := guard(func() error { return yaml.UnmarshalWithOptions(data, &cfg, yaml.Strict()) }); err != nil {
		fe := tokenError(file, pos, err)
		if len(f.Docs) > 0 {
			if key := firstUnknownField(f.Docs[0].Body, reflect.TypeOf(cfg)); key != nil {
				if at := key.GetToken().Position; at != nil && (fe.Line == 0 || at.Line < fe.Line || at.Line == fe.Line && at.Column < fe.Col) {
					fe = &FieldError{File: file, Line: at.Line, Col: at.Column, Path: pos.pathAt(at.Line, at.Column),
						Msg: fmt.Sprintf("unknown field %q", keyName(key))}
				}
			}
		}
		return nil, Errors{fe}
	}
	if len(f.Docs) > 1 {
		// The decoder reads the first document only, so what follows a "---" would be ignored
		// silently: it is refused, pointing at the separator.
		fe := &FieldError{File: file, Line: 1, Col: 1, Msg: "the file holds more than one YAML document; a config is one document"}
		if st := f.Docs[1].Start; st != nil && st.Position != nil {
			fe.Line, fe.Col = st.Position.Line, st.Position.Column
			fe.Msg = fmt.Sprintf("%q starts a second YAML document; a config is one document", st.Value)
		}
		return nil, Errors{fe}
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, Errors{{File: file, Line: 1, Col: 1, Msg: "config is empty (expected one YAML document with version: 1)"}}
	}
	return &Source{File: file, Config: &cfg, pos: pos}, nil
}

// guard runs a call into the YAML library, which can panic on hostile input (nil dereferences
// in its decoder); a config must then be rejected with an error, not crash the gateway.
func guard(call func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed YAML: the decoder failed (%v)", r)
		}
	}()
	return call()
}

// maxDepth is how deeply collections may nest in a config. Real configs nest fewer than 15
// levels; the limit is far above that and far below where parsing gets expensive.
const maxDepth = 64

// checkDepth returns an error at the first collection nested more than maxDepth deep, or nil.
// It runs before the parser, in one pass over the bytes without allocating, and knows just
// enough YAML to find collections: flow brackets and braces, and block sequence entries and
// mapping keys by their columns, skipping quoted and block scalars, the continuation lines of
// plain scalars, and comments. Where it is unsure it counts a level rather than skip one, so
// that no input reaches the parser deeper than the limit.
func checkDepth(file string, data []byte) *FieldError {
	s := depthScanner{data: data, line: 1, scalarAbove: -2, block: make([]blockLevel, 0, 16)}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		s.i, s.lineStart = 3, 3 // a byte order mark is not indentation
	}
	for s.i < len(s.data) {
		if at, deep := s.scanLine(); deep {
			return &FieldError{File: file, Line: s.line, Col: utf8.RuneCount(s.data[s.lineStart:at]) + 1,
				Msg: fmt.Sprintf("collections are nested more than %d levels deep", maxDepth)}
		}
	}
	return nil
}

// depthScanner is the state of checkDepth. Offsets are into data; a block level's col is
// relative to the start of its line.
type depthScanner struct {
	data      []byte
	i         int
	line      int
	lineStart int
	flow      int          // open flow collections
	block     []blockLevel // open block collections, innermost last
	// scalarAbove is set after a block or plain scalar: the following lines indented more than
	// it may be the scalar's content (-1: every line; -2: none).
	scalarAbove   int
	literal       bool // the scalar is a block scalar (| or >), not a plain one
	contentIndent int  // a block scalar's indentation, once known (else -1)
}

type blockLevel struct {
	col int
	seq bool
}

// scanLine scans one line in block context, and any lines that a flow collection or quoted
// scalar started on it continues onto. If a collection is too deep it returns the offset where
// that collection starts and true.
func (s *depthScanner) scanLine() (int, bool) {
	indent := 0
	for s.i < len(s.data) && s.data[s.i] == ' ' {
		s.i++
		indent++
	}
	s.skipSpace()
	if s.eol() {
		s.endLine()
		return 0, false
	}
	if indent == 0 && (s.hasPrefix("---") || s.hasPrefix("...")) && s.sepAt(s.i+3) {
		s.block, s.scalarAbove = s.block[:0], -2 // a new document
		s.i += 3
		return s.scanNode(false)
	}
	if s.scalarAbove > -2 && indent > s.scalarAbove {
		if s.literal {
			// A block scalar's first line sets its indentation; a less indented line ends it.
			if s.contentIndent < 0 {
				s.contentIndent = indent
			}
			if indent >= s.contentIndent {
				s.endLine()
				return 0, false
			}
		} else if s.data[s.i] != '#' {
			// A plain scalar goes on over lines with neither a comment nor a ": " on them.
			from := s.i
			if !s.skipPlain() && s.eol() {
				s.endLine()
				return 0, false
			}
			s.i = from
		}
	}
	s.scalarAbove = -2
	if indent == 0 && s.data[s.i] == '%' {
		s.endLine() // a directive
		return 0, false
	}
	return s.scanNode(true)
}

// scanNode scans from a place where a node may start to the end of the line. block says
// whether a block collection may start here (not after "key: ").
func (s *depthScanner) scanNode(block bool) (int, bool) {
	propCol := -1 // where the node's tag or anchor is, if it has one
	for {
		s.skipSpace()
		if s.eol() {
			s.endLine()
			return 0, false
		}
		start, c := s.i, s.data[s.i]
		col := start - s.lineStart
		if propCol >= 0 {
			col, propCol = propCol, -1
		}
		switch {
		case c == '#':
			s.endLine()
			return 0, false
		case block && (c == '-' || c == '?' || c == ':') && s.sepAt(s.i+1):
			// A sequence entry, a complex key or its value: a collection at this column.
			if s.enter(col, c == '-') {
				return start, true
			}
			s.i++
			continue
		case c == '!' || c == '&':
			s.skipProperty()
			propCol = col
			continue
		case c == '|' || c == '>':
			s.scalarAbove, s.literal, s.contentIndent = s.parentCol(), true, -1
			// An indentation indicator ("|2", ">-1") fixes the content's indentation, which
			// the first line may then exceed.
			for j := s.i + 1; j < len(s.data) && j <= s.i+2; j++ {
				if d := s.data[j]; d >= '1' && d <= '9' {
					s.contentIndent = max(s.parentCol(), 0) + int(d-'0')
					break
				} else if d != '-' && d != '+' {
					break
				}
			}
			s.endLine()
			return 0, false
		case c == '[' || c == '{':
			if at, deep := s.scanFlow(); deep {
				return at, true
			}
		case c == '"' || c == '\'':
			s.skipQuoted(c)
		default:
			if !s.skipPlain() {
				// A plain scalar to the end of the line: more indented lines continue it.
				if s.eol() {
					s.scalarAbove, s.literal = s.parentCol(), false
				}
				s.endLine()
				return 0, false
			}
		}
		// After a key (plain, quoted or flow), ": " starts its value in a mapping at col.
		s.skipSpace()
		if s.i < len(s.data) && s.data[s.i] == ':' && s.sepAt(s.i+1) {
			if block && s.enter(col, false) {
				return start, true
			}
			s.i++
		}
		block = false
	}
}

// enter records a block collection entry at col: a sibling of the innermost open collection,
// or a new, deeper one (which reports true if that is too deep).
func (s *depthScanner) enter(col int, seq bool) bool {
	for n := len(s.block); n > 0; n = len(s.block) {
		top := s.block[n-1]
		if top.col > col || top.col == col && top.seq && !seq {
			s.block = s.block[:n-1]
			continue
		}
		if top.col == col && top.seq == seq {
			return false
		}
		break
	}
	s.block = append(s.block, blockLevel{col: col, seq: seq})
	return len(s.block)+s.flow > maxDepth
}

// parentCol is the column a scalar's content lines must be indented beyond.
func (s *depthScanner) parentCol() int {
	if n := len(s.block); n > 0 {
		return s.block[n-1].col
	}
	return -1
}

// scanFlow scans a flow collection from its opening bracket to its closing one, across lines.
func (s *depthScanner) scanFlow() (int, bool) {
	nodeStart := true // a quoted scalar or a node property can start here
	for s.i < len(s.data) {
		c := s.data[s.i]
		switch {
		case c == '[' || c == '{':
			s.flow++
			if len(s.block)+s.flow > maxDepth {
				return s.i, true
			}
			s.i++
			nodeStart = true
		case c == ']' || c == '}':
			s.i++
			nodeStart = false
			if s.flow--; s.flow == 0 {
				return 0, false
			}
		case c == '\n':
			s.endLine()
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case c == '#' && (s.i == s.lineStart || s.data[s.i-1] == ' ' || s.data[s.i-1] == '\t'):
			for s.i < len(s.data) && s.data[s.i] != '\n' {
				s.i++
			}
		case c == ',':
			s.i++
			nodeStart = true
		case c == ':' && (s.sepAt(s.i+1) || isFlowIndicator(s.data[s.i+1]) || s.data[s.i-1] == '"' || s.data[s.i-1] == '\''):
			s.i++
			nodeStart = true
		case nodeStart && (c == '"' || c == '\''):
			s.skipQuoted(c)
			nodeStart = false
		case nodeStart && (c == '!' || c == '&'):
			s.skipProperty()
		default:
			s.i++
			nodeStart = false
		}
	}
	return 0, false
}

// skipQuoted skips a quoted scalar, which may span lines.
func (s *depthScanner) skipQuoted(q byte) {
	s.i++
	for s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == '\n':
			s.endLine()
		case c == '\\' && q == '"':
			s.i++
			if s.i < len(s.data) && s.data[s.i] != '\n' {
				s.i++
			}
		case c == q && q == '\'' && s.i+1 < len(s.data) && s.data[s.i+1] == '\'':
			s.i += 2
		case c == q:
			s.i++
			return
		default:
			s.i++
		}
	}
}

// skipProperty skips a tag or an anchor, which end at a space or a flow indicator.
func (s *depthScanner) skipProperty() {
	s.i++
	for s.i < len(s.data) && !s.sepAt(s.i) && !isFlowIndicator(s.data[s.i]) {
		s.i++
	}
}

// skipPlain skips a plain scalar in block context to the ": " that makes it a key (and reports
// true), or to a comment or the end of the line.
func (s *depthScanner) skipPlain() bool {
	for ; !s.eol(); s.i++ {
		switch c := s.data[s.i]; {
		case c == ':' && s.sepAt(s.i+1):
			return true
		case (c == ' ' || c == '\t') && s.i+1 < len(s.data) && s.data[s.i+1] == '#':
			return false
		}
	}
	return false
}

func (s *depthScanner) skipSpace() {
	for s.i < len(s.data) && (s.data[s.i] == ' ' || s.data[s.i] == '\t' || s.data[s.i] == '\r') {
		s.i++
	}
}

func (s *depthScanner) eol() bool { return s.i >= len(s.data) || s.data[s.i] == '\n' }

// endLine moves past the next line break.
func (s *depthScanner) endLine() {
	for s.i < len(s.data) && s.data[s.i] != '\n' {
		s.i++
	}
	if s.i < len(s.data) {
		s.i++
		s.line++
		s.lineStart = s.i
	}
}

func (s *depthScanner) hasPrefix(p string) bool {
	return len(s.data)-s.i >= len(p) && string(s.data[s.i:s.i+len(p)]) == p
}

// sepAt reports whether the byte at i ends a token: a space, a line break or the end.
func (s *depthScanner) sepAt(i int) bool {
	return i >= len(s.data) || s.data[i] == ' ' || s.data[i] == '\t' || s.data[i] == '\r' || s.data[i] == '\n'
}

func isFlowIndicator(c byte) bool {
	return c == '[' || c == ']' || c == '{' || c == '}' || c == ','
}

var nodeUnmarshaler = reflect.TypeFor[yaml.NodeUnmarshaler]()

// firstUnknownField returns, in file order, the first mapping key in n that names no field of
// the type t decodes into. The decoder rejects unknown fields too, but only after decoding the
// rest of their struct and picking among several in map order, so its report is neither the
// first in the file nor the same from one run to the next.
func firstUnknownField(n ast.Node, t reflect.Type) ast.MapKeyNode {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(nodeUnmarshaler) {
		return nil
	}
	var pairs []*ast.MappingValueNode
	switch v := n.(type) {
	case *ast.TagNode:
		return firstUnknownField(v.Value, t)
	case *ast.AnchorNode:
		return firstUnknownField(v.Value, t)
	case *ast.SequenceNode:
		if t.Kind() != reflect.Slice {
			return nil
		}
		for _, item := range v.Values {
			if k := firstUnknownField(item, t.Elem()); k != nil {
				return k
			}
		}
		return nil
	case *ast.MappingNode:
		pairs = v.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{v}
	default:
		return nil
	}
	for _, kv := range pairs {
		if kv.Key == nil {
			continue
		}
		if _, merge := kv.Key.(*ast.MergeKeyNode); merge {
			continue
		}
		var ft reflect.Type
		switch t.Kind() {
		case reflect.Map:
			ft = t.Elem()
		case reflect.Struct:
			name := keyName(kv.Key)
			for i := range t.NumField() {
				if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == name && tag != "" && tag != "-" {
					ft = t.Field(i).Type
					break
				}
			}
			if ft == nil {
				return kv.Key
			}
		default:
			return nil
		}
		if k := firstUnknownField(kv.Value, ft); k != nil {
			return k
		}
	}
	return nil
}

// tokenError converts a decoder error into a FieldError with its position and field path.
func tokenError(file string, pos *positions, err error) *FieldError {
	fe := &FieldError{File: file}
	var tok *token.Token
	var ne *nodeError
	var ye yaml.Error
	switch {
	case errors.As(err, &ne):
		tok, fe.Msg = ne.tok, ne.msg
	case errors.As(err, &ye):
		tok, fe.Msg = ye.GetToken(), ye.GetMessage()
	default:
		fe.Msg = err.Error()
	}
	if tok != nil && tok.Position != nil {
		fe.Line, fe.Col = tok.Position.Line, tok.Position.Column
		if pos != nil {
			fe.Path = pos.pathAt(fe.Line, fe.Col)
		}
	}
	fe.Msg = strings.TrimSpace(fe.Msg)
	return fe
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		if c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// positions maps field paths to source positions and back.
type positions struct {
	byPath map[string][2]int
	byPos  map[[2]int]string
}

func indexPositions(f *ast.File) *positions {
	p := &positions{byPath: map[string][2]int{}, byPos: map[[2]int]string{}}
	for _, d := range f.Docs {
		if d.Body != nil {
			p.walk("", d.Body)
		}
	}
	return p
}

func (p *positions) record(path string, tok *token.Token, primary bool) {
	if tok == nil || tok.Position == nil {
		return
	}
	at := [2]int{tok.Position.Line, tok.Position.Column}
	if primary || p.byPath[path] == ([2]int{}) {
		p.byPath[path] = at
	}
	if _, ok := p.byPos[at]; !ok {
		p.byPos[at] = path
	}
}

func (p *positions) walk(path string, n ast.Node) {
	switch v := n.(type) {
	case *ast.MappingNode:
		p.record(path, v.GetToken(), false)
		for _, kv := range v.Values {
			p.walkPair(path, kv)
		}
	case *ast.MappingValueNode:
		p.walkPair(path, v)
	case *ast.SequenceNode:
		p.record(path, v.GetToken(), false)
		for i, item := range v.Values {
			child := path + "[" + strconv.Itoa(i) + "]"
			p.record(child, startToken(item), true)
			p.walk(child, item)
		}
	case *ast.TagNode:
		p.walk(path, v.Value)
	case *ast.AnchorNode:
		p.walk(path, v.Value)
	default:
		if n != nil {
			p.record(path, n.GetToken(), false)
		}
	}
}

// startToken is the first token of n as the user sees it: a block mapping's own token is the
// colon of its first pair, but an error about a list item should point at that pair's key.
func startToken(n ast.Node) *token.Token {
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 && m.Values[0].Key != nil {
		return m.Values[0].Key.GetToken()
	}
	if kv, ok := n.(*ast.MappingValueNode); ok && kv.Key != nil {
		return kv.Key.GetToken()
	}
	return n.GetToken()
}

// keyName is a mapping key as the decoder sees it: a quoted key ("X A": v) without its quotes.
func keyName(k ast.MapKeyNode) string {
	if s, ok := scalarText(k); ok {
		return s
	}
	return k.String()
}

func (p *positions) walkPair(path string, kv *ast.MappingValueNode) {
	key := keyName(kv.Key)
	child := key
	if path != "" {
		child = path + "." + key
	}
	p.record(child, kv.Key.GetToken(), true)
	if kv.Value != nil {
		if _, scalar := scalarText(kv.Value); scalar {
			// Type errors point at the value token: map it back to this field.
			if t := kv.Value.GetToken(); t != nil && t.Position != nil {
				at := [2]int{t.Position.Line, t.Position.Column}
				if _, ok := p.byPos[at]; !ok {
					p.byPos[at] = child
				}
			}
		}
		p.walk(child, kv.Value)
	}
}

// pathAt returns the field path of the node at line:col ("" if unknown).
func (p *positions) pathAt(line, col int) string {
	if s, ok := p.byPos[[2]int{line, col}]; ok {
		return s
	}
	// Fall back to the nearest node on the same line at or before col.
	best, bestCol := "", -1
	for at, s := range p.byPos {
		if at[0] == line && at[1] <= col && at[1] > bestCol {
			best, bestCol = s, at[1]
		}
	}
	return best
}

// lookup returns the position of path, or of its nearest ancestor that is in the file.
func (p *positions) lookup(path string) (int, int) {
	for path != "" {
		if at, ok := p.byPath[path]; ok {
			return at[0], at[1]
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 1, 1
}

// errorf builds a FieldError located at path.
func (s *Source) errorf(path, format string, args ...any) *FieldError {
	fe := &FieldError{File: s.File, Path: path, Msg: fmt.Sprintf(format, args...)}
	if s.pos != nil {
		fe.Line, fe.Col = s.pos.lookup(path)
	}
	return fe
}

func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
}

// syntaxHint explains the most common YAML trap in a gateway config: an unquoted path template
// such as /users/{id} inside a { } flow mapping, where the braces are read as YAML syntax.
func syntaxHint(data []byte, line int) string {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	l := lines[line-1]
	if strings.Contains(l, "{") && (strings.Contains(l, "/{") || strings.Contains(l, ": {") && strings.Count(l, "{") > 1) {
		return " (inside { } quote values that contain braces, e.g. path: \"/users/{id}\")"
	}
	return ""
}
