package wire

import (
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

// tokenChars is every byte RFC 9110 §5.6.2 allows in a token (tchar).
const tokenChars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func TestValidFieldName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", false},
		{"simple", "Content-Type", true},
		{"lower", "content-type", true},
		{"single char", "x", true},
		{"digits", "0123", true},
		{"all tchar specials", "!#$%&'*+-.^_`|~", true},
		{"all tchars", tokenChars, true},
		{"space inside", "Content Type", false},
		{"leading space", " Host", false},
		{"trailing space", "Host ", false},
		{"tab", "Host\t", false},
		{"colon", "Host:", false},
		{"double quote", `a"b`, false},
		{"parens", "(a)", false},
		{"comma", "a,b", false},
		{"semicolon", "a;b", false},
		{"slash", "a/b", false},
		{"equals", "a=b", false},
		{"at", "a@b", false},
		{"brackets", "a[b]", false},
		{"braces", "{a}", false},
		{"question mark", "a?b", false},
		{"backslash", `a\b`, false},
		{"angle brackets", "<a>", false},
		{"NUL", "a\x00", false},
		{"CR", "a\r", false},
		{"LF", "a\n", false},
		{"CTL 0x01", "\x01", false},
		{"CTL 0x1f", "a\x1fb", false},
		{"DEL", "a\x7f", false},
		{"obs-text 0x80", "a\x80", false},
		{"obs-text 0xff", "\xff", false},
		{"UTF-8 letter", "caf\u00e9", false},
		{"kelvin sign", "\u212a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidFieldName(tt.in); got != tt.want {
				t.Errorf("ValidFieldName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidFieldNameEveryByte(t *testing.T) {
	for b := 0; b < 256; b++ {
		want := strings.IndexByte(tokenChars, byte(b)) >= 0
		for _, s := range []string{string([]byte{byte(b)}), "A" + string([]byte{byte(b)}) + "z"} {
			if got := ValidFieldName(s); got != want {
				t.Errorf("ValidFieldName(%q) = %v, want %v", s, got, want)
			}
		}
	}
}

func TestValidFieldValue(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", true},
		{"simple", "text/html; charset=utf-8", true},
		{"surrounding spaces", "  a b  ", true},
		{"only space", " ", true},
		{"tab inside", "a\tb", true},
		{"only tab", "\t", true},
		{"quoted and specials", `"x",(y);z=<w>@[v]{u}\`, true},
		{"tilde", "~", true},
		{"CR", "a\rb", false},
		{"LF", "a\nb", false},
		{"CRLF", "a\r\n b", false},
		{"NUL", "a\x00b", false},
		{"CTL 0x01", "\x01", false},
		{"VT", "a\x0bb", false},
		{"FF", "a\x0c", false},
		{"CTL 0x1f", "\x1f", false},
		{"DEL", "a\x7f", false},
		{"obs-text 0x80", "\x80", true},
		{"obs-text 0xff", "a\xffb", true},
		{"UTF-8", "caf\u00e9 \u212a", true},
		{"obs-text then CTL", "\xff\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidFieldValue(tt.in); got != tt.want {
				t.Errorf("ValidFieldValue(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidFieldValueEveryByte(t *testing.T) {
	for b := 0; b < 256; b++ {
		want := b == '\t' || (b >= 0x20 && b != 0x7f)
		for _, s := range []string{string([]byte{byte(b)}), "a" + string([]byte{byte(b)}) + "b"} {
			if got := ValidFieldValue(s); got != want {
				t.Errorf("ValidFieldValue(%q) = %v, want %v", s, got, want)
			}
		}
	}
}

func TestTrimOWS(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{" ", ""},
		{"\t", ""},
		{" \t \t", ""},
		{"a", "a"},
		{" a", "a"},
		{"a ", "a"},
		{"\t a \t", "a"},
		{"  a b  ", "a b"},
		{"a \t b", "a \t b"},
		{"\ta\tb\t", "a\tb"},
		{"\r a \r", "\r a \r"},             // CR is not OWS
		{"\n a", "\n a"},                   // LF is not OWS
		{"\x0ba\x0b", "\x0ba\x0b"},         // VT is not OWS
		{"\x0ca", "\x0ca"},                 // FF is not OWS
		{"\u00a0a\u00a0", "\u00a0a\u00a0"}, // NBSP is not OWS
		{" \xff ", "\xff"},
	}
	for _, tt := range tests {
		if got := TrimOWS(tt.in); got != tt.want {
			t.Errorf("TrimOWS(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseContentLength(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"00", 0, true},
		{"1", 1, true},
		{"007", 7, true},
		{"123", 123, true},
		{"4294967296", 4294967296, true},
		{"99999999999999999", 99999999999999999, true},   // 17 digits
		{"999999999999999999", 999999999999999999, true}, // 18 digits, the maximum
		{"100000000000000000", 100000000000000000, true}, // 18 digits
		{"000000000000000001", 1, true},                  // 18 digits with leading zeros
		{"1000000000000000000", 0, false},                // 19 digits
		{"0000000000000000001", 0, false},                // 19 digits, small value
		{"9223372036854775807", 0, false},                // MaxInt64, 19 digits
		{"9223372036854775808", 0, false},                // MaxInt64+1
		{"99999999999999999999", 0, false},               // 20 digits
		{"18446744073709551616", 0, false},               // 2^64
		{"+1", 0, false},
		{"-1", 0, false},
		{"-0", 0, false},
		{"+0", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"\t1", 0, false},
		{"1\t", 0, false},
		{"1,1", 0, false},
		{"1, 1", 0, false},
		{"1,", 0, false},
		{",1", 0, false},
		{"1.0", 0, false},
		{"1_000", 0, false},
		{"0x10", 0, false},
		{"1e3", 0, false},
		{"a", 0, false},
		{"12a", 0, false},
		{"1\x00", 0, false},
		{"1\r\n", 0, false},
		{"\u0661", 0, false}, // ARABIC-INDIC DIGIT ONE
		{"\uff11", 0, false}, // FULLWIDTH DIGIT ONE
		{"1\xff", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseContentLength(tt.in)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("ParseContentLength(%q) = %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestHasToken(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		token  string
		want   bool
	}{
		{"nil values", nil, "close", false},
		{"empty value", []string{""}, "close", false},
		{"exact", []string{"close"}, "close", true},
		{"value upper first", []string{"Close"}, "close", true},
		{"value all upper", []string{"CLOSE"}, "close", true},
		{"token mixed case", []string{"close"}, "cLoSe", true},
		{"both mixed case", []string{"KeEp-AlIvE"}, "kEEP-alive", true},
		{"list first", []string{"close, keep-alive"}, "close", true},
		{"list last", []string{"keep-alive, close"}, "close", true},
		{"list no space", []string{"keep-alive,close,upgrade"}, "close", true},
		{"list tabs", []string{"keep-alive\t,\tclose\t"}, "close", true},
		{"surrounding OWS", []string{" \tclose\t "}, "close", true},
		{"empty elements", []string{",,close,,"}, "close", true},
		{"empty elements middle", []string{"a,,b"}, "b", true},
		{"second value", []string{"keep-alive", "Upgrade"}, "upgrade", true},
		{"second value list", []string{"a, b", "c, d"}, "d", true},
		{"absent", []string{"keep-alive, upgrade"}, "close", false},
		{"prefix of element", []string{"closed"}, "close", false},
		{"suffix of element", []string{"notclose"}, "close", false},
		{"element prefix of token", []string{"clos"}, "close", false},
		{"hyphenated longer", []string{"close-ish"}, "close", false},
		{"space inside element", []string{"clo se"}, "close", false},
		{"token split over values", []string{"clo", "se"}, "close", false},
		{"CR is not OWS", []string{"close\r"}, "close", false},
		{"token with params not stripped", []string{"chunked;x=1"}, "chunked", false},
		{"chunked in TE list", []string{"gzip, chunked"}, "chunked", true},
		// Tokens are ASCII; RFC 9110 §5.6.2 case-insensitivity is ASCII-only (this was a bug:
		// strings.EqualFold folded Unicode). Unicode simple
		// folding maps U+212A KELVIN SIGN to 'k' and U+017F LATIN SMALL LETTER LONG S to 's'.
		{"kelvin sign is not k", []string{"\u212aeep-alive"}, "keep-alive", false},
		{"long s is not s", []string{"clo\u017fe"}, "close", false},
		{"kelvin in list", []string{"upgrade, chun\u212aed"}, "chunked", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasToken(tt.values, tt.token); got != tt.want {
				t.Errorf("HasToken(%+q, %+q) = %v, want %v", tt.values, tt.token, got, tt.want)
			}
		})
	}
}

func TestCanonicalKey(t *testing.T) {
	long := strings.Repeat("x-long-", 10) + "name" // 74 bytes
	if len(long) <= 64 {
		t.Fatalf("test name too short: %d", len(long))
	}
	tests := []struct {
		in, want string
	}{
		{"", ""},
		// Already canonical, common and uncommon.
		{"Content-Type", "Content-Type"},
		{"Host", "Host"},
		{"Te", "Te"},
		{"Etag", "Etag"},
		{"X-Custom-Thing", "X-Custom-Thing"},
		{"X", "X"},
		// Lower case.
		{"content-type", "Content-Type"},
		{"host", "Host"},
		{"te", "Te"},
		{"etag", "Etag"},
		{"x-forwarded-for", "X-Forwarded-For"},
		{"www-authenticate", "Www-Authenticate"},
		{"sec-websocket-key", "Sec-Websocket-Key"},
		{"x-custom-thing", "X-Custom-Thing"},
		{"x", "X"},
		// Upper and mixed case.
		{"CONTENT-LENGTH", "Content-Length"},
		{"TE", "Te"},
		{"ETag", "Etag"},
		{"TRANSFER-ENCODING", "Transfer-Encoding"},
		{"x-REQUEST-id", "X-Request-Id"},
		{"X-CUSTOM-THING", "X-Custom-Thing"},
		{"tRaCePaReNt", "Traceparent"},
		// Non-letters.
		{"x-1-a", "X-1-A"},
		{"1abc", "1abc"},
		{"a_b-c", "A_b-C"},
		{"-a", "-A"},
		{"a--b", "A--B"},
		{"a-", "A-"},
		{"foo.bar", "Foo.bar"},
		// Names longer than the 64-byte stack buffer.
		{long, "X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-Name"},
		{strings.ToUpper(long), "X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-X-Long-Name"},
		{strings.Repeat("a", 64), "A" + strings.Repeat("a", 63)},
		{strings.Repeat("a", 65), "A" + strings.Repeat("a", 64)},
		// Invalid names are returned unchanged, as textproto does.
		{"foo bar", "foo bar"},
		{"content type", "content type"},
		{"a:b", "a:b"},
		{"caf\u00e9", "caf\u00e9"},
		{"\xffhost", "\xffhost"},
	}
	for _, tt := range tests {
		if got := CanonicalKey(tt.in); got != tt.want {
			t.Errorf("CanonicalKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := textproto.CanonicalMIMEHeaderKey(tt.in); got != tt.want {
			t.Errorf("test table disagrees with textproto: CanonicalMIMEHeaderKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCanonicalKeyCommonHeaders checks that every entry of the common-header table is itself
// canonical (a non-canonical entry would make CanonicalKey disagree with textproto) and that
// every casing of it maps to it.
func TestCanonicalKeyCommonHeaders(t *testing.T) {
	if len(commonHeaders) < 20 {
		t.Fatalf("commonHeaders has %d entries", len(commonHeaders))
	}
	for k, v := range commonHeaders {
		if k != v {
			t.Errorf("commonHeaders[%q] = %q", k, v)
		}
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("common header %q is not canonical (textproto: %q)", k, c)
		}
		for _, in := range []string{k, strings.ToLower(k), strings.ToUpper(k), swapCase(k)} {
			if got := CanonicalKey(in); got != k {
				t.Errorf("CanonicalKey(%q) = %q, want %q", in, got, k)
			}
		}
	}
}

func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}

// TestCanonicalKeyAgreesWithTextproto compares against net/textproto over many generated names.
func TestCanonicalKeyAgreesWithTextproto(t *testing.T) {
	alphabet := "aAzZ-_0.~x"
	var gen func(prefix string, depth int)
	n := 0
	gen = func(prefix string, depth int) {
		if got, want := CanonicalKey(prefix), textproto.CanonicalMIMEHeaderKey(prefix); got != want {
			t.Errorf("CanonicalKey(%q) = %q, textproto says %q", prefix, got, want)
		}
		n++
		if depth == 0 {
			return
		}
		for i := 0; i < len(alphabet); i++ {
			gen(prefix+alphabet[i:i+1], depth-1)
		}
	}
	gen("", 4)
	for b := 0; b < 256; b++ {
		for _, s := range []string{string([]byte{byte(b)}), "x-" + string([]byte{byte(b)}) + "-y", "Host" + string([]byte{byte(b)})} {
			if got, want := CanonicalKey(s), textproto.CanonicalMIMEHeaderKey(s); got != want {
				t.Errorf("CanonicalKey(%q) = %q, textproto says %q", s, got, want)
			}
		}
	}
	if n < 10000 {
		t.Fatalf("generated only %d names", n)
	}
}

func FuzzCanonicalKey(f *testing.F) {
	for _, s := range []string{"", "content-type", "Content-Type", "TE", "x-a-b", "foo bar", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := CanonicalKey(s)
		if want := textproto.CanonicalMIMEHeaderKey(s); got != want {
			t.Fatalf("CanonicalKey(%q) = %q, textproto says %q", s, got, want)
		}
		// FieldKey is ValidFieldName and CanonicalKey in one.
		if key, ok := FieldKey(s); ok != ValidFieldName(s) || ok && key != got {
			t.Fatalf("FieldKey(%q) = %q, %v; want %q, %v", s, key, ok, got, ValidFieldName(s))
		}
		if ValidFieldName(s) && !strings.EqualFold(got, s) {
			t.Fatalf("CanonicalKey(%q) = %q changed more than case", s, got)
		}
	})
}

// FieldKey agrees with ValidFieldName and CanonicalKey for every byte in every position of a
// few names.
func TestFieldKey(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := string([]byte{byte(c)})
		for _, s := range []string{b, b + "-type", "content-" + b, "X" + b + "y", "content-type", "Content-Type", "CONTENT-TYPE", ""} {
			key, ok := FieldKey(s)
			if ok != ValidFieldName(s) || ok && key != CanonicalKey(s) {
				t.Fatalf("FieldKey(%q) = %q, %v; want %q, %v", s, key, ok, CanonicalKey(s), ValidFieldName(s))
			}
		}
	}
}

func TestCanonicalKeyAllocs(t *testing.T) {
	for _, name := range []string{"Content-Type", "X-Custom-Thing", "content-type", "CONTENT-LENGTH", "x-forwarded-for", "te"} {
		if n := testing.AllocsPerRun(100, func() { _ = CanonicalKey(name) }); n != 0 {
			t.Errorf("CanonicalKey(%q) allocates %v times per call, want 0", name, n)
		}
	}
	// An uncommon non-canonical name must be rewritten, which allocates; this checks the test
	// itself can observe allocations.
	if n := testing.AllocsPerRun(100, func() { _ = CanonicalKey("x-custom-thing") }); n == 0 {
		t.Errorf("CanonicalKey(%q) does not allocate; allocation counting is broken", "x-custom-thing")
	}
}

func TestIsUpgrade(t *testing.T) {
	for _, tc := range []struct {
		h    http.Header
		want bool
	}{
		{http.Header{"Upgrade": {"websocket"}, "Connection": {"keep-alive, Upgrade"}}, true},
		{http.Header{"Upgrade": {"h2c"}, "Connection": {"UPGRADE"}}, true},
		{http.Header{"Upgrade": {"websocket"}}, false},
		{http.Header{"Upgrade": {""}, "Connection": {"upgrade"}}, false},
		{http.Header{"Connection": {"upgrade"}}, false},
		{http.Header{"Upgrade": {"websocket"}, "Connection": {"upgrades"}}, false},
	} {
		if got := IsUpgrade(tc.h); got != tc.want {
			t.Errorf("IsUpgrade(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}
