package router

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // "" means an error is expected
		err  string // PathError.Reason
	}{
		{name: "root", in: "/", want: "/"},
		{name: "clean", in: "/users", want: "/users"},
		{name: "trailing slash kept", in: "/users/", want: "/users/"},
		{name: "pchars kept", in: "/a:b@c!$&'()*+,;=x", want: "/a:b@c!$&'()*+,;=x"},
		{name: "three dots is a name", in: "/a/.../b", want: "/a/.../b"},
		{name: "dot inside name", in: "/a/.b./c", want: "/a/.b./c"},
		{name: "double slash prefix", in: "//admin", want: "/admin"},
		{name: "duplicate slashes", in: "//a///b", want: "/a/b"},
		{name: "only slashes", in: "///", want: "/"},
		{name: "dot segment", in: "/a/./b", want: "/a/b"},
		{name: "dot dot", in: "/a/b/../c", want: "/a/c"},
		{name: "trailing dot dot", in: "/a/b/..", want: "/a/"},
		{name: "trailing dot", in: "/a/b/.", want: "/a/b/"},
		{name: "dot dot then slash", in: "/a/../", want: "/"},
		{name: "above root clamps", in: "/a/../../../admin", want: "/admin"},
		{name: "dot dot at root", in: "/..", want: "/"},
		{name: "dot at root", in: "/./", want: "/"},
		{name: "mixed", in: "/a/b/../c/./d", want: "/a/c/d"},
		{name: "collapse before dot removal", in: "/a//../b", want: "/b"},
		{name: "encoded dot dot", in: "/a/%2e%2e/admin", want: "/admin"},
		{name: "encoded dot dot mixed case", in: "/a/%2E%2e/admin", want: "/admin"},
		{name: "half encoded dot dot", in: "/a/.%2e/admin", want: "/admin"},
		{name: "encoded dot", in: "/a/%2e/b", want: "/a/b"},
		{name: "decode unreserved uppercase hex", in: "/%41%5A", want: "/AZ"},
		{name: "decode encoded dots uppercase hex", in: "/%41/%2E%2E/%7E", want: "/~"},
		{name: "decode unreserved", in: "/%41%62c%7e%5F%2D", want: "/Abc~_-"},
		{name: "lowercase hex uppercased", in: "/a%2a", want: "/a%2A"},
		{name: "reserved escape kept", in: "/a%3Bb%3f", want: "/a%3Bb%3F"},
		{name: "double encoding kept", in: "/a/%252e%252e/", want: "/a/%252e%252e/"},
		{name: "encoded CRLF rejected", in: "/a%0d%0a", err: "control character"},
		{name: "encoded DEL rejected", in: "/a%7F", err: "control character"},
		{name: "encoded tab rejected", in: "/a%09b", err: "control character"},
		{name: "valid utf8 escape", in: "/%C3%A9", want: "/%C3%A9"},
		{name: "valid utf8 lowercase", in: "/caf%c3%a9", want: "/caf%C3%A9"},
		{name: "raw utf8 encoded", in: "/café", want: "/caf%C3%A9"},
		{name: "raw 4-byte utf8", in: "/😀", want: "/%F0%9F%98%80"},
		{name: "raw space", in: "/a b", want: "/a%20b"},
		{name: "raw delimiters", in: "/a\"<>^`{|}[]#?", want: "/a%22%3C%3E%5E%60%7B%7C%7D%5B%5D%23%3F"},

		{name: "empty", in: "", err: "not absolute"},
		{name: "relative", in: "users", err: "not absolute"},
		{name: "asterisk", in: "*", err: "not absolute"},
		{name: "absolute URI", in: "http://x/a", err: "not absolute"},
		{name: "lone percent", in: "/%", err: "invalid percent-encoding"},
		{name: "short escape", in: "/%2", err: "invalid percent-encoding"},
		{name: "short escape mid", in: "/a%2/b", err: "invalid percent-encoding"},
		{name: "bad hex", in: "/%G1", err: "invalid percent-encoding"},
		{name: "bad hex low", in: "/%1G", err: "invalid percent-encoding"},
		{name: "percent percent", in: "/%%32%66", err: "invalid percent-encoding"},
		{name: "encoded slash", in: "/%2F", err: "encoded slash"},
		{name: "encoded slash lowercase", in: "/%2f", err: "encoded slash"},
		{name: "dot dot encoded slash", in: "/a/..%2fadmin", err: "encoded slash"},
		{name: "raw backslash", in: `/a\..\b`, err: "backslash"},
		{name: "encoded backslash", in: "/a/..%5cadmin", err: "backslash"},
		{name: "encoded backslash upper", in: "/a%5C", err: "backslash"},
		{name: "encoded NUL", in: "/a%00", err: "NUL byte"},
		{name: "raw NUL", in: "/a\x00b", err: "NUL byte"},
		{name: "raw newline", in: "/a\nb", err: "control character"},
		{name: "raw tab", in: "/a\tb", err: "control character"},
		{name: "raw DEL", in: "/a\x7f", err: "control character"},
		{name: "overlong slash", in: "/%c0%af", err: "invalid UTF-8"},
		{name: "overlong slash 3 bytes", in: "/%e0%80%af", err: "invalid UTF-8"},
		{name: "overlong dot", in: "/%c0%ae%c0%ae/x", err: "invalid UTF-8"},
		{name: "surrogate", in: "/%ed%a0%80", err: "invalid UTF-8"},
		{name: "above U+10FFFF", in: "/%f4%90%80%80", err: "invalid UTF-8"},
		{name: "invalid byte", in: "/%ff", err: "invalid UTF-8"},
		{name: "truncated sequence", in: "/%c3", err: "invalid UTF-8"},
		{name: "sequence split by slash", in: "/%c3/%a9", err: "invalid UTF-8"},
		{name: "sequence interrupted", in: "/%c3a", err: "invalid UTF-8"},
		{name: "lone continuation", in: "/%a9", err: "invalid UTF-8"},
		{name: "raw invalid utf8", in: "/\xc3", err: "invalid UTF-8"},
		{name: "raw overlong", in: "/\xc0\xaf", err: "invalid UTF-8"},
		{name: "mixed raw and escaped utf8", in: "/\xc3%a9", want: "/%C3%A9"},
		{name: "servlet dot dot params", in: "/..;/admin", err: "dot segment with parameters"},
		{name: "servlet dot params", in: "/a/.;x/b", err: "dot segment with parameters"},
		{name: "encoded servlet dot dot", in: "/%2e%2e;jsessionid=1/admin", err: "dot segment with parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NormalizePath(tt.in)
			if tt.err != "" {
				var pe *PathError
				if !errors.As(err, &pe) {
					t.Fatalf("NormalizePath(%q) = %q, %v; want *PathError %q", tt.in, got, err, tt.err)
				}
				if pe.Reason != tt.err {
					t.Fatalf("NormalizePath(%q) reason = %q, want %q", tt.in, pe.Reason, tt.err)
				}
				if want := "invalid path: " + tt.err; err.Error() != want {
					t.Fatalf("Error() = %q, want %q", err.Error(), want)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizePath(%q) error %v, want %q", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := NormalizePath(got)
			if err != nil || again != got {
				t.Fatalf("not idempotent: NormalizePath(%q) = %q, %v", got, again, err)
			}
		})
	}
}

func TestNormalizePathCleanDoesNotAllocate(t *testing.T) {
	clean := []string{"/", "/users", "/api/v1/users/42/posts/", "/caf%C3%A9/%20x", "/a;b=c/~x"}
	for _, p := range clean {
		allocs := testing.AllocsPerRun(100, func() {
			out, err := NormalizePath(p)
			if err != nil || out != p {
				t.Fatalf("NormalizePath(%q) = %q, %v", p, out, err)
			}
		})
		if allocs != 0 {
			t.Errorf("NormalizePath(%q) allocates %v times, want 0", p, allocs)
		}
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = NormalizePath("/a/%2F") })
	if allocs != 0 {
		t.Errorf("rejecting a path allocates %v times, want 0", allocs)
	}
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, bc := range []struct{ name, path string }{
		{"clean", "/api/v1/users/12345/posts"},
		{"clean-escaped", "/files/caf%C3%A9/report%20final.pdf"},
		{"dirty", "//api/v1/./users/%2e%2e/users/12345/%7euser"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(bc.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{
		"/", "/users/", "//a///b", "/a/./b", "/a/b/..", "/a/%2e%2E/admin", "/a/..%2fadmin", "/%2F",
		`/a\..\b`, "/a%00", "/%c0%af", "/café", "/%C3%A9", "/..;/x", "/%", "/%zz", "/a/.%2e", "/\xff",
		"/%41/%7e/%2a", "/a b?c#d", "/....//../.", "/%e2%82%ac%f0%9f%98%80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || out != "" {
				t.Fatalf("NormalizePath(%q) = %q, %v; want a *PathError and no output", in, out, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("NormalizePath(%q) = %q: not absolute", in, out)
		}
		for _, bad := range []string{"//", "/./", "/../", `\`, "%2F", "%2f", "%00"} {
			if strings.Contains(out, bad) {
				t.Fatalf("NormalizePath(%q) = %q contains %q", in, out, bad)
			}
		}
		for i := 0; i+2 < len(out); i++ {
			if out[i] != '%' {
				continue
			}
			if hex := out[i+1 : i+3]; strings.ToUpper(hex) != hex {
				t.Fatalf("NormalizePath(%q) = %q has lowercase hex %q", in, out, hex)
			}
			if d := decodeAll(out[i : i+3]); byteClass[d[0]] == clsUnreserved {
				t.Fatalf("NormalizePath(%q) = %q keeps an escaped unreserved %q", in, out, out[i:i+3])
			}
		}
		if strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("NormalizePath(%q) = %q ends with a dot segment", in, out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x21 || c >= 0x7f {
				t.Fatalf("NormalizePath(%q) = %q has raw byte %#x", in, out, c)
			}
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: NormalizePath(%q) = %q; NormalizePath(%q) = %q, %v", in, out, out, again, err)
		}
		if want := referenceClean(decodeAll(in)); decodeAll(out) != want {
			t.Fatalf("NormalizePath(%q) = %q decodes to %q, want %q", in, out, decodeAll(out), want)
		}
	})
}

// decodeAll percent-decodes every escape of a path NormalizePath accepted.
func decodeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			hi, _, _ := unhex(s[i+1])
			lo, _, _ := unhex(s[i+2])
			b.WriteByte(hi<<4 | lo)
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// referenceClean is an independent, slow statement of the slash and dot
// rules over a decoded path.
func referenceClean(p string) string {
	var out []string
	segs := strings.Split(p[1:], "/")
	trailing := strings.HasSuffix(p, "/")
	for i, seg := range segs {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
		if i == len(segs)-1 && (seg == "." || seg == "..") {
			trailing = true
		}
	}
	if len(out) == 0 {
		return "/"
	}
	r := "/" + strings.Join(out, "/")
	if trailing {
		r += "/"
	}
	return r
}
