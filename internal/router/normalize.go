package router

import (
	"strings"
	"unicode/utf8"
)

// PathError reports why a request path was rejected by NormalizePath.
// Reason is a short, stable, human-readable text (for example "encoded slash")
// that is safe to log and to map to a client-facing error code.
type PathError struct {
	Reason string
}

// Error implements error.
func (e *PathError) Error() string { return "invalid path: " + e.Reason }

// The errors are shared values: NormalizePath never allocates to reject a path.
var (
	errNotAbsolute    = &PathError{Reason: "not absolute"}
	errBadEscape      = &PathError{Reason: "invalid percent-encoding"}
	errEncodedSlash   = &PathError{Reason: "encoded slash"}
	errBackslash      = &PathError{Reason: "backslash"}
	errNUL            = &PathError{Reason: "NUL byte"}
	errControl        = &PathError{Reason: "control character"}
	errInvalidUTF8    = &PathError{Reason: "invalid UTF-8"}
	errDotSegmentArgs = &PathError{Reason: "dot segment with parameters"}
)

// Byte classes of the raw (still escaped) path.
const (
	clsEncode     uint8 = iota // legal only percent-encoded: re-encode it
	clsPchar                   // sub-delims, ':' and '@': kept as is
	clsUnreserved              // ALPHA DIGIT - . _ ~: kept as is, and decoded when escaped
	clsSlash
	clsPercent
	clsBackslash
	clsControl
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c < 0x20 || c == 0x7f:
			t[c] = clsControl
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			t[c] = clsUnreserved
		case c == '!', c == '$', c == '&', c == '\'', c == '(', c == ')', c == '*',
			c == '+', c == ',', c == ';', c == '=', c == ':', c == '@':
			t[c] = clsPchar
		case c == '/':
			t[c] = clsSlash
		case c == '%':
			t[c] = clsPercent
		case c == '\\':
			t[c] = clsBackslash
		default: // space " # < > ? [ ] ^ ` { | } and every byte >= 0x80
			t[c] = clsEncode
		}
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

// unhex returns the value of the hex digit c and whether c was a lowercase
// letter; ok is false if c is not a hex digit.
func unhex(c byte) (v byte, lower, ok bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', false, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, false, true
	}
	return 0, false, false
}

// NormalizePath returns the canonical escaped form of escaped, the raw path of
// a request as the client sent it (the request-target up to, not including,
// '?'). The result is what routing matches on and what is forwarded upstream,
// so that no policy keyed on a path can be bypassed by spelling it differently.
//
// Canonical form:
//   - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded;
//     other escapes are kept with uppercase hex digits;
//   - raw bytes that are not allowed in a path (space, '"', '<', '>', '^', '`',
//     '{', '|', '}', '[', ']', '#', '?' and every byte >= 0x80) are
//     percent-encoded, so "/café" and "/caf%C3%A9" are one path;
//   - runs of '/' collapse to one;
//   - "." and ".." segments are removed per RFC 3986 §5.2.4 (after decoding,
//     so "%2e%2E" is ".."); ".." above the root stays at the root, and a final
//     "." or ".." segment leaves a trailing slash; any other trailing slash is
//     preserved.
//
// NormalizePath rejects, with a *PathError, whatever an upstream could read
// differently from the gateway: a path not starting with '/', malformed
// escapes, an encoded slash (%2F), a backslash (raw or %5C), NUL (raw or %00),
// any other raw control character, bytes that do not decode to valid UTF-8,
// and a dot segment carrying ';' parameters ("..;" is ".." to some servlet
// containers), and encoded control characters (%0A, %0D, %7F, ...).
//
// When escaped is already canonical, NormalizePath returns it unchanged
// without allocating.
func NormalizePath(escaped string) (string, error) {
	change, err := scanPath(escaped)
	if err != nil {
		return "", err
	}
	if !change {
		return escaped, nil
	}
	return rebuildPath(escaped), nil
}

// scanPath validates s and reports whether it differs from its canonical form.
func scanPath(s string) (change bool, err error) {
	if len(s) == 0 || s[0] != '/' {
		return false, errNotAbsolute
	}
	var (
		// Streaming UTF-8 validation of the decoded bytes.
		seq  [4]byte
		have int
		need int
		// Dot-segment detection for the current segment: the number of
		// decoded bytes before any raw ';', whether they are all dots, and
		// whether a raw ';' was seen.
		segLen  int
		allDots = true
		semi    bool
	)
	for i := 1; i <= len(s); i++ {
		var c byte
		cls := clsSlash // the end of s ends the last segment
		if i < len(s) {
			c = s[i]
			cls = byteClass[c]
		}
		if cls == clsUnreserved || cls == clsPchar {
			// Fast path: a byte kept as is.
			if need != 0 {
				return false, errInvalidUTF8
			}
			if !semi {
				if c == ';' { // raw ';' starts segment parameters; %3B is data
					semi = true
				} else {
					segLen++
					allDots = allDots && c == '.'
				}
			}
			continue
		}
		d := c // the decoded byte
		switch cls {
		case clsSlash:
			if need != 0 {
				return false, errInvalidUTF8
			}
			if allDots && (segLen == 1 || segLen == 2) {
				if semi {
					return false, errDotSegmentArgs
				}
				change = true
			}
			if i < len(s) && s[i-1] == '/' {
				change = true
			}
			segLen, allDots, semi = 0, true, false
			continue
		case clsPercent:
			if i+2 >= len(s) {
				return false, errBadEscape
			}
			hi, lo1, ok1 := unhex(s[i+1])
			lo, lo2, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return false, errBadEscape
			}
			d = hi<<4 | lo
			switch {
			case d == '/':
				return false, errEncodedSlash
			case d == '\\':
				return false, errBackslash
			case d == 0:
				return false, errNUL
			case d < 0x20 || d == 0x7f:
				// Encoded CR/LF and friends: an upstream that decodes paths could be tricked
				// into header or log injection.
				return false, errControl
			case byteClass[d] == clsUnreserved, lo1, lo2:
				change = true
			}
			i += 2
		case clsBackslash:
			return false, errBackslash
		case clsControl:
			if c == 0 {
				return false, errNUL
			}
			return false, errControl
		case clsEncode:
			change = true
		}
		if !semi {
			segLen++
			allDots = allDots && d == '.'
		}
		switch {
		case need == 0 && d < utf8.RuneSelf:
		case need == 0:
			switch {
			case d >= 0xC2 && d <= 0xDF:
				need = 2
			case d >= 0xE0 && d <= 0xEF:
				need = 3
			case d >= 0xF0 && d <= 0xF4:
				need = 4
			default:
				return false, errInvalidUTF8
			}
			seq[0], have = d, 1
		default:
			if d&0xC0 != 0x80 {
				return false, errInvalidUTF8
			}
			seq[have] = d
			have++
			if have == need {
				// utf8.Valid rejects overlong forms, surrogates and > U+10FFFF.
				if !utf8.Valid(seq[:need]) {
					return false, errInvalidUTF8
				}
				need = 0
			}
		}
	}
	return change, nil
}

// rebuildPath builds the canonical form of s, which scanPath has accepted.
func rebuildPath(s string) string {
	out := make([]byte, 0, len(s)+8)
	trailing := len(s) > 1 && s[len(s)-1] == '/'
	for i := 1; i < len(s); {
		j := i
		for j < len(s) && s[j] != '/' {
			j++
		}
		seg := s[i:j]
		last := j >= len(s)
		i = j + 1
		if seg == "" {
			continue // collapse "//"
		}
		mark := len(out)
		out = append(out, '/')
		out = appendSegment(out, seg)
		switch string(out[mark+1:]) {
		case ".":
			out = out[:mark]
		case "..":
			out = out[:mark]
			k := len(out) - 1
			for k >= 0 && out[k] != '/' {
				k--
			}
			if k < 0 {
				k = 0
			}
			out = out[:k]
		default:
			continue
		}
		if last {
			trailing = true
		}
	}
	if len(out) == 0 {
		return "/"
	}
	if trailing {
		out = append(out, '/')
	}
	return string(out)
}

// appendSegment appends the canonical form of one validated segment.
func appendSegment(out []byte, seg string) []byte {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch byteClass[c] {
		case clsPercent:
			hi, _, _ := unhex(seg[i+1])
			lo, _, _ := unhex(seg[i+2])
			d := hi<<4 | lo
			if byteClass[d] == clsUnreserved {
				out = append(out, d)
			} else {
				out = append(out, '%', upperHex[hi], upperHex[lo])
			}
			i += 2
		case clsEncode:
			out = append(out, '%', upperHex[c>>4], upperHex[c&0xF])
		default:
			out = append(out, c)
		}
	}
	return out
}

// SegmentValue reports whether v may fill one segment of an upstream path (after escaping):
// not empty, not a dot segment, and without a slash or backslash. Escaping alone is not enough:
// "." and ".." survive url.PathEscape and would take a call to another resource
// ("/users/../orders"), and many servers decode %2F and %5C before they resolve the path.
func SegmentValue(v string) bool {
	return v != "" && v != "." && v != ".." && !strings.ContainsAny(v, "/\\")
}
