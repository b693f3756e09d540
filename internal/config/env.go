package config

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// substituteEnv replaces ${NAME} and ${NAME:-default}; "$$" is a literal "$". A value is text,
// never YAML: it is escaped for the scalar it lands in (double- or single-quoted, plain, or a
// block scalar), so that a secret holding " #", ": ", a quote, a leading "*" or "!" or a line
// break is taken whole instead of being cut short, turned into an alias or a tag, or adding
// keys. References in comments are left alone. Lines are kept in place (a value's line breaks
// are escaped) so positions still point at the user's file; a value inserted into a block
// scalar is the one exception, since its line breaks are the scalar's own.
func substituteEnv(file string, data []byte, lookup func(string) (string, bool)) ([]byte, Errors) {
	s := string(data)
	if !strings.Contains(s, "$") {
		return data, nil
	}
	e := envScanner{file: file, s: s, line: 1, col: 1, lineStart: true, blockParent: -1}
	e.b.Grow(len(s))
	for e.i < len(s) {
		e.step(lookup)
	}
	return []byte(e.b.String()), e.errs
}

// envScanner knows as much YAML as substituteEnv needs to tell which kind of scalar a reference
// is in: quotes, comments, flow collections and block scalars.
type envScanner struct {
	file      string
	s         string
	i         int
	b         strings.Builder
	errs      Errors
	line, col int

	lineStart bool   // nothing but indentation seen on this line yet
	lineBegin int    // offset of this line's first byte
	indent    string // this line's indentation
	last      byte   // the last character of the document structure on this line (0: none)
	indicator bool   // last is an indicator ("- ", "? ", ": ") rather than scalar text
	prop      bool   // in a tag or anchor ("!t ", "&a ") that a node's content follows
	nodeCol   int    // column of the last node that began on this line
	dashCol   int    // column of the last "- " on this line
	comment   bool   // in a comment until the line ends
	double    bool   // in a double-quoted scalar
	single    bool   // in a single-quoted scalar
	flow      int    // open flow collections

	// A block scalar ("|" or ">") holds every following line indented deeper than the node
	// that owns it (blockParent: that node's column, the key's or the "- "'s; -1: none).
	blockParent int
	inBlock     bool
}

// atScalarStart reports whether a scalar starting here would begin at its node's start: at the
// start of a line, after a key's ": ", a "- " or "? " entry, a tag or an anchor, or in a flow
// collection after "[", "{" or ",".
func (e *envScanner) atScalarStart() bool {
	switch e.last {
	case 0, ' ': // ' ': after a tag or an anchor
		return true
	case '[', '{', ',':
		return e.flow > 0
	case ':', '-', '?':
		// Indicators only when a space follows them: "a:b" and "a-b" are plain text, and so
		// is " - " inside a scalar.
		return e.indicator && e.i > 0 && (e.s[e.i-1] == ' ' || e.s[e.i-1] == '\t')
	}
	return false
}

func (e *envScanner) emit(c byte) {
	e.b.WriteByte(c)
	e.i++
	if c == '\n' {
		e.line, e.col = e.line+1, 1
		e.lineStart, e.indent, e.last, e.comment, e.prop = true, "", 0, false, false
		e.lineBegin, e.nodeCol, e.dashCol = e.i, 0, 0
		return
	}
	e.col++
}

func (e *envScanner) step(lookup func(string) (string, bool)) {
	s, c := e.s, e.s[e.i]
	if e.lineStart && (e.double || e.single) {
		e.lineStart = false // a quoted scalar's next line: its spaces are folded, not indentation
	}
	if e.lineStart {
		// Indentation decides whether a block scalar goes on.
		j := e.i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		blank := j == len(s) || s[j] == '\n' || s[j] == '\r'
		e.indent = s[e.i:j]
		if e.blockParent >= 0 && !blank {
			e.inBlock = j-e.i > e.blockParent
			if !e.inBlock {
				e.blockParent = -1
			}
		}
		e.b.WriteString(s[e.i:j])
		e.col += j - e.i
		e.i = j
		e.lineStart = false
		if blank || e.i == len(s) {
			return
		}
		c = s[e.i]
	}
	if c == '$' && e.i+1 < len(s) && s[e.i+1] == '$' && !e.comment {
		e.b.WriteByte('$')
		e.i += 2
		e.col += 2
		return
	}
	if c == '$' && e.i+1 < len(s) && s[e.i+1] == '{' && !e.comment {
		e.reference(lookup)
		return
	}
	switch {
	case c == '\n' || e.comment || e.inBlock:
	case e.double:
		if c == '\\' && e.i+1 < len(s) && s[e.i+1] != '\n' {
			e.emit(c)
			c = s[e.i]
		} else if c == '"' {
			e.double = false
		}
	case e.single:
		if c == '\'' {
			if e.i+1 < len(s) && s[e.i+1] == '\'' {
				e.emit(c)
				c = s[e.i]
			} else {
				e.single = false
			}
		}
	case c == '#' && (e.last == 0 || e.i > 0 && (s[e.i-1] == ' ' || s[e.i-1] == '\t')):
		e.comment = true
	case c == ' ' || c == '\t' || c == '\r':
		if e.prop {
			// A tag or anchor ends: the node's content starts after it.
			e.prop, e.last = false, ' '
		}
		e.emit(c)
		return // spacing does not change where a scalar starts
	default:
		start := e.atScalarStart()
		col := e.i - e.lineBegin
		e.indicator = false
		switch {
		case start && c == '"':
			e.double = true
		case start && c == '\'':
			e.single = true
		case start && (c == '[' || c == '{'):
			e.flow++
		case e.flow > 0 && (c == ']' || c == '}'):
			e.flow--
		case start && (c == '|' || c == '>') && e.flow == 0:
			e.blockParent = e.nodeCol
			if e.last == '-' {
				e.blockParent = e.dashCol
			}
		case start && (c == '!' || c == '&'):
			e.prop = true
		case start && (c == '-' || c == '?'):
			e.indicator, e.dashCol = true, col
		case c == ':':
			e.indicator = true
		}
		if start && !e.indicator && !e.prop {
			e.nodeCol = col
		}
		e.last = c
	}
	e.emit(c)
}

// reference replaces the ${...} at e.i.
func (e *envScanner) reference(lookup func(string) (string, bool)) {
	s := e.s
	end := strings.IndexByte(s[e.i:], '}')
	nl := strings.IndexByte(s[e.i:], '\n')
	if end < 0 || (nl >= 0 && nl < end) {
		e.errs = append(e.errs, &FieldError{File: e.file, Line: e.line, Col: e.col, Msg: "unterminated ${ reference"})
		e.b.WriteByte('$')
		e.i++
		e.col++
		return
	}
	ref := s[e.i+2 : e.i+end]
	line, col := e.line, e.col
	// At the start of a line (outside a flow collection) a value may go on a plain scalar of
	// the line above: it is not taken as a whole scalar (quoted), only inserted if it is safe.
	start := e.atScalarStart() && !(e.last == 0 && e.flow == 0)
	e.i += end + 1
	e.col += end + 1
	name, def, hasDef := strings.Cut(ref, ":-")
	v, ok := "", false
	if !validEnvName(name) {
		e.errs = append(e.errs, &FieldError{File: e.file, Line: line, Col: col, Msg: fmt.Sprintf("invalid environment variable name %q", name)})
		return
	}
	if v, ok = lookup(name); !ok {
		if !hasDef {
			e.errs = append(e.errs, &FieldError{File: e.file, Line: line, Col: col, Msg: fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for a default)", name, name)})
			return
		}
		v = def
	}
	if !utf8.ValidString(v) {
		e.errs = append(e.errs, &FieldError{File: e.file, Line: line, Col: col, Msg: fmt.Sprintf("environment variable %s is not valid UTF-8", name)})
		return
	}
	whole := start && e.scalarEndsHere()
	switch {
	case e.inBlock:
		// A block scalar's lines carry the indentation of the line the reference is on.
		e.b.WriteString(strings.ReplaceAll(v, "\n", "\n"+e.indent))
	case e.double:
		writeDoubleQuoted(&e.b, v)
	case e.single:
		if strings.ContainsAny(v, "\r\n") {
			e.errs = append(e.errs, &FieldError{File: e.file, Line: line, Col: col,
				Msg: fmt.Sprintf("environment variable %s holds a line break, which a single-quoted string cannot keep; put the reference in double quotes", name)})
			return
		}
		e.b.WriteString(strings.ReplaceAll(v, "'", "''"))
	case whole && v != "" && v != "true" && v != "false":
		// The reference is the whole scalar: quoted, the value stays one string, and text that
		// YAML would read as something else ("0123" as the octal number 83, "~" as null) is
		// kept as written. Quoted numbers still fill number fields; booleans stay plain.
		e.b.WriteByte('"')
		writeDoubleQuoted(&e.b, v)
		e.b.WriteByte('"')
		e.last, e.indicator = '"', false
	case plainSafe(v, start, e.flow > 0):
		e.b.WriteString(v)
		if v != "" {
			e.last, e.indicator = 'x', false // inside a plain scalar now
		}
	default:
		e.errs = append(e.errs, &FieldError{File: e.file, Line: line, Col: col,
			Msg: fmt.Sprintf("environment variable %s holds characters that would change the YAML structure here; put the whole value in double quotes, as in \"...${%s}...\"", name, name)})
	}
}

// scalarEndsHere reports whether the plain scalar being read ends at e.i: the line ends, a
// comment starts, or (in a flow collection) an entry ends.
func (e *envScanner) scalarEndsHere() bool {
	rest := e.s[e.i:]
	t := strings.TrimLeft(rest, " \t")
	switch {
	case t == "" || t[0] == '\n' || t[0] == '\r':
		return true
	case t[0] == '#':
		return len(t) < len(rest) // a comment needs space before it
	case e.flow > 0:
		return t[0] == ',' || t[0] == ']' || t[0] == '}'
	}
	return false
}

// plainSafe reports whether v, inserted into a plain scalar, reads back as exactly the text v
// (start: it begins the scalar; flow: inside a flow collection).
func plainSafe(v string, start, flow bool) bool {
	if v == "" {
		return true
	}
	if strings.ContainsAny(v, "\r\n\t") || strings.Contains(v, ": ") || strings.Contains(v, " #") ||
		v[len(v)-1] == ':' || v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	if flow && strings.ContainsAny(v, ",[]{}") {
		return false
	}
	if start {
		switch v[0] {
		case '[', ']', '{', '}', ',', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
			return false
		case '-', '?', ':':
			// "-5" is a number; "- x" or a lone "-" would be structure.
			if len(v) == 1 || v[1] == ' ' {
				return false
			}
		}
	}
	return true
}

// writeDoubleQuoted writes v escaped for the inside of a YAML double-quoted scalar.
func writeDoubleQuoted(b *strings.Builder, v string) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
}
