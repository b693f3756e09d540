package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// readAllSize drains r with reads of at most size bytes and returns the data and the first
// error. It fails the test if the reader makes no progress for many calls in a row.
func readAllSize(t testing.TB, r io.Reader, size int) ([]byte, error) {
	t.Helper()
	var out []byte
	p := make([]byte, size)
	empty := 0
	for {
		n, err := r.Read(p)
		if n < 0 || n > len(p) {
			t.Fatalf("Read returned n=%d for a %d-byte buffer", n, len(p))
		}
		out = append(out, p[:n]...)
		if err != nil {
			return out, err
		}
		if n == 0 {
			if empty++; empty > 100 {
				t.Fatalf("Read returned (0, nil) %d times in a row", empty)
			}
		} else {
			empty = 0
		}
	}
}

func newChunked(src io.Reader, bufSize, maxTrailer int, trailer *http.Header) *ChunkedReader {
	return &ChunkedReader{Src: bufio.NewReaderSize(src, bufSize), MaxTrailer: maxTrailer, Trailer: trailer}
}

// sourceWrappers are the ways the raw bytes are delivered to the bufio.Reader.
var sourceWrappers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"plain", func(r io.Reader) io.Reader { return r }},
	{"one-byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data-err", iotest.DataErrReader},
}

func TestChunkedReaderBodies(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16000 bytes
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty body", "0\r\n\r\n", ""},
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"several chunks", "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n1\r\n!\r\n0\r\n\r\n", "hello world!"},
		{"one-byte chunks", "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", "abc"},
		{"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"lower hex", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"multi-digit hex", "1F\r\n" + strings.Repeat("x", 31) + "\r\n0\r\n\r\n", strings.Repeat("x", 31)},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"15 hex digits", "00000000000000a\r\n0123456789\r\n000000000000000\r\n\r\n", "0123456789"},
		{"data contains CRLF", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
		{"data looks like a size line", "5\r\n0\r\n\r\n\r\n0\r\n\r\n", "0\r\n\r\n"},
		{"binary data", "4\r\n\x00\xff\r\x7f\r\n0\r\n\r\n", "\x00\xff\r\x7f"},
		{"large chunks", "3e80\r\n" + string(big) + "\r\n3e80\r\n" + string(big) + "\r\n0\r\n\r\n", string(big) + string(big)},
		{"extension", "5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello"},
		{"extension without value", "5;a\r\nhello\r\n0\r\n\r\n", "hello"},
		{"several extensions", "5;a;b=c;d=\"e\"\r\nhello\r\n0\r\n\r\n", "hello"},
		{"quoted extension with semicolon", "5;a=\"x ; y\"\r\nhello\r\n0\r\n\r\n", "hello"},
		{"BWS before extension", "5 ;a=b\r\nhello\r\n0\t;z\r\n\r\n", "hello"},
		{"mixed BWS before extension", "5 \t ;a=b\r\nhello\r\n0\r\n\r\n", "hello"},
		{"extension with obs-text", "5;a=\xff\x80\r\nhello\r\n0\r\n\r\n", "hello"},
		{"extension with tab", "5;a=\"b\tc\"\r\nhello\r\n0\r\n\r\n", "hello"},
	}
	for _, tt := range tests {
		for _, w := range sourceWrappers {
			for _, bufSize := range []int{64, 4096} {
				for _, readSize := range []int{1, 2, 3, 7, 512, 65536} {
					name := fmt.Sprintf("%s/%s/buf%d/read%d", tt.name, w.name, bufSize, readSize)
					cr := newChunked(w.wrap(strings.NewReader(tt.body)), bufSize, 1024, nil)
					got, err := readAllSize(t, cr, readSize)
					if err != io.EOF {
						t.Errorf("%s: error %v, want io.EOF", name, err)
					}
					if string(got) != tt.want {
						t.Errorf("%s: decoded %d bytes %.40q, want %d bytes %.40q", name, len(got), got, len(tt.want), tt.want)
					}
					if n := cr.Src.Buffered(); n != 0 {
						t.Errorf("%s: %d bytes left buffered", name, n)
					}
				}
			}
		}
	}
}

func TestChunkedReaderZeroLengthReads(t *testing.T) {
	body := "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
	cr := newChunked(strings.NewReader(body), 64, 64, nil)
	var got []byte
	p := make([]byte, 2)
	for i := 0; i < 100; i++ {
		if n, err := cr.Read(nil); n != 0 || (err != nil && err != io.EOF) {
			t.Fatalf("Read(nil) = %d, %v", n, err)
		}
		n, err := cr.Read(p)
		got = append(got, p[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	if string(got) != "abcde" {
		t.Fatalf("decoded %q, want %q", got, "abcde")
	}
	if n, err := cr.Read(p); n != 0 || err != io.EOF {
		t.Fatalf("Read after the end = %d, %v, want 0, io.EOF", n, err)
	}
}

func TestChunkedReaderTrailers(t *testing.T) {
	tests := []struct {
		name    string
		trailer string // the trailer section, without the final CRLF
		want    http.Header
	}{
		{"none", "", http.Header{}},
		{"one", "X-Checksum: abc\r\n", http.Header{"X-Checksum": {"abc"}}},
		{"canonicalized and trimmed", "x-checksum: \t abc def \t\r\n", http.Header{"X-Checksum": {"abc def"}}},
		{"no OWS", "X-A:b\r\n", http.Header{"X-A": {"b"}}},
		{"empty value", "X-Empty:\r\n", http.Header{"X-Empty": {""}}},
		{"only OWS value", "X-Empty: \t \r\n", http.Header{"X-Empty": {""}}},
		{"repeated in any case", "X-Other: v1\r\nx-other: v2\r\nX-OTHER: v3\r\n", http.Header{"X-Other": {"v1", "v2", "v3"}}},
		{"several", "Grpc-Status: 0\r\ngrpc-message: ok\r\nServer-Timing: db;dur=53\r\n",
			http.Header{"Grpc-Status": {"0"}, "Grpc-Message": {"ok"}, "Server-Timing": {"db;dur=53"}}},
		{"value with tab and obs-text", "X-V: a\tb \xff\r\n", http.Header{"X-V": {"a\tb \xff"}}},
		{"value with colon", "X-Url: http://a:1/\r\n", http.Header{"X-Url": {"http://a:1/"}}},
		{"tchar name", "X!#$%&'*+.^_`|~1: v\r\n", http.Header{"X!#$%&'*+.^_`|~1": {"v"}}},
		{"dropped framing fields",
			"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nHost: evil\r\nTrailer: X\r\n" +
				"Connection: close\r\nTe: trailers\r\nExpect: 100-continue\r\n",
			http.Header{}},
		{"dropped in other cases",
			"content-length: 5\r\nTRANSFER-ENCODING: chunked\r\nhOsT: evil\r\ntrailer: X\r\n" +
				"CONNECTION: close\r\nTE: trailers\r\nexpect: 100-continue\r\n",
			http.Header{}},
		{"dropped mixed with kept",
			"X-Before: 1\r\nContent-Length: 5\r\nX-After: 2\r\nTE: trailers\r\nx-before: 3\r\n",
			http.Header{"X-Before": {"1", "3"}, "X-After": {"2"}}},
	}
	for _, tt := range tests {
		body := "5\r\nhello\r\n0\r\n" + tt.trailer + "\r\n"
		for _, bufSize := range []int{128, 4096} {
			name := fmt.Sprintf("%s/buf%d", tt.name, bufSize)

			// A nil map behind the pointer is created when a field is kept.
			var h http.Header
			cr := newChunked(strings.NewReader(body), bufSize, 4096, &h)
			got, err := readAllSize(t, cr, 3)
			if err != io.EOF || string(got) != "hello" {
				t.Errorf("%s: got %q, %v, want %q, io.EOF", name, got, err, "hello")
			}
			if len(tt.want) > 0 && h == nil {
				t.Errorf("%s: trailer map not created", name)
			}
			if len(h) != len(tt.want) || (len(h) > 0 && !reflect.DeepEqual(h, tt.want)) {
				t.Errorf("%s: trailer = %q, want %q", name, h, tt.want)
			}

			// An existing map is added to, not replaced.
			h2 := http.Header{"X-Pre": {"kept"}, "X-Other": {"v0"}}
			want2 := http.Header{"X-Pre": {"kept"}, "X-Other": {"v0"}}
			for k, v := range tt.want {
				want2[k] = append(want2[k], v...)
			}
			cr = newChunked(strings.NewReader(body), bufSize, 4096, &h2)
			if _, err := readAllSize(t, cr, 4096); err != io.EOF {
				t.Errorf("%s (existing map): error %v, want io.EOF", name, err)
			}
			if !reflect.DeepEqual(h2, want2) {
				t.Errorf("%s (existing map): trailer = %q, want %q", name, h2, want2)
			}

			// A nil Trailer pointer discards the fields but still reads past them.
			suffix := "NEXT"
			cr = newChunked(strings.NewReader(body+suffix), bufSize, 4096, nil)
			got, err = readAllSize(t, cr, 4096)
			if err != io.EOF || string(got) != "hello" {
				t.Errorf("%s (nil Trailer): got %q, %v, want %q, io.EOF", name, got, err, "hello")
			}
			if rest, _ := io.ReadAll(cr.Src); string(rest) != suffix {
				t.Errorf("%s (nil Trailer): left %q, want %q", name, rest, suffix)
			}
		}
	}
}

func TestChunkedReaderMaxTrailer(t *testing.T) {
	tests := []struct {
		name       string
		trailer    string // without the final CRLF
		maxTrailer int
		wantErr    error
	}{
		{"no trailer, zero limit", "", 0, io.EOF},
		{"one field, zero limit", "X-A: 1\r\n", 0, ErrTrailerTooLarge},
		{"exactly at the limit", "X-A: 1\r\n", 8, io.EOF},
		{"one byte over the limit", "X-A: 1\r\n", 7, ErrTrailerTooLarge},
		{"two fields at the limit", "X-A: 1\r\nX-B: 2\r\n", 16, io.EOF},
		{"two fields over the limit", "X-A: 1\r\nX-B: 2\r\n", 15, ErrTrailerTooLarge},
		{"dropped fields count", "Host: example.com\r\n", 10, ErrTrailerTooLarge},
		{"many small fields", strings.Repeat("a:b\r\n", 1000), 1000, ErrTrailerTooLarge},
		{"many small fields fit", strings.Repeat("a:b\r\n", 200), 1000, io.EOF},
		{"negative limit", "X-A: 1\r\n", -1, ErrTrailerTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			body := "3\r\nabc\r\n0\r\n" + tt.trailer + "\r\n"
			cr := newChunked(strings.NewReader(body), 4096, tt.maxTrailer, &h)
			got, err := readAllSize(t, cr, 64)
			if err != tt.wantErr {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if string(got) != "abc" {
				t.Fatalf("decoded %q, want %q", got, "abc")
			}
			if !errors.Is(err, ErrTrailerTooLarge) {
				return
			}
			// The limit is enforced while reading, not after reading everything.
			if rest, _ := io.ReadAll(cr.Src); len(rest) == 0 && len(tt.trailer) > 100 {
				t.Errorf("the whole trailer section was consumed before failing")
			}
		})
	}
}

func TestChunkedReaderMalformed(t *testing.T) {
	longExt := "5;" + strings.Repeat("x", 40) + "\r\nhello\r\n0\r\n\r\n"
	longTrailer := "0\r\nX-Long: " + strings.Repeat("v", 40) + "\r\n\r\n"
	tests := []struct {
		name    string
		body    string
		bufSize int // 0: 4096
	}{
		{"bad hex", "x\r\nhello\r\n0\r\n\r\n", 0},
		{"bad hex letter g", "g\r\n", 0},
		{"hex then junk", "5z\r\nhello\r\n0\r\n\r\n", 0},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 0},
		{"0X prefix", "0X5\r\nhello\r\n0\r\n\r\n", 0},
		{"negative", "-5\r\nhello\r\n0\r\n\r\n", 0},
		{"negative zero", "-0\r\n\r\n", 0},
		{"plus sign", "+5\r\nhello\r\n0\r\n\r\n", 0},
		{"empty size", "\r\nhello\r\n0\r\n\r\n", 0},
		{"empty size with extension", ";a=b\r\nhello\r\n0\r\n\r\n", 0},
		{"only BWS and extension", " ;a=b\r\nhello\r\n0\r\n\r\n", 0},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n", 0},
		{"leading tab", "\t5\r\nhello\r\n0\r\n\r\n", 0},
		{"trailing space without extension", "5 \r\nhello\r\n0\r\n\r\n", 0},
		{"trailing tab without extension", "5\t\r\nhello\r\n0\r\n\r\n", 0},
		{"space inside size", "1 0\r\n" + strings.Repeat("x", 16) + "\r\n0\r\n\r\n", 0},
		{"space inside size before extension", "1 0;a\r\n" + strings.Repeat("x", 16) + "\r\n0\r\n\r\n", 0},
		{"underscore in size", "1_0\r\n", 0},
		{"unicode digit", "\u0665\r\n", 0},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", 0},
		{"bare CR after size", "5\rhello\r\n0\r\n\r\n", 0},
		{"CR CR LF after size", "5\r\r\nhello\r\n0\r\n\r\n", 0},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", 0},
		{"LF CR after data", "5\r\nhello\n\r0\r\n\r\n", 0},
		{"no CRLF after data", "5\r\nhello0\r\n\r\n", 0},
		{"data longer than size", "3\r\nhello\r\n0\r\n\r\n", 0},
		{"data one byte longer", "4\r\nhello\r\n0\r\n\r\n", 0},
		{"bare LF after last chunk", "0\n\r\n", 0},
		{"bare LF ending trailer section", "0\r\n\n", 0},
		{"bare LF after trailer field", "0\r\nX-A: 1\n\r\n", 0},
		{"16 hex digits overflow", "ffffffffffffffff\r\n", 0},
		{"16 hex digits 1 followed by zeros", "1000000000000000\r\n", 0},
		{"16 hex digits small value", "0000000000000005\r\nhello\r\n0\r\n\r\n", 0},
		{"17 hex digits", "10000000000000000\r\n", 0},
		{"16 zero digits", "0000000000000000\r\n\r\n", 0},
		{"NUL in extension", "5;a=\x00\r\nhello\r\n0\r\n\r\n", 0},
		{"DEL in extension", "5;a\x7f\r\nhello\r\n0\r\n\r\n", 0},
		{"CR in extension", "5;a\rb\r\nhello\r\n0\r\n\r\n", 0},
		{"CTL in last-chunk extension", "0;\x01\r\n\r\n", 0},
		{"size line longer than buffer", longExt, 16},
		{"trailer line longer than buffer", longTrailer, 16},
		{"obs-fold in trailer", "0\r\nX-A: a\r\n b\r\n\r\n", 0},
		{"obs-fold with tab in trailer", "0\r\nX-A: a\r\n\tb\r\n\r\n", 0},
		{"trailer section starting with whitespace", "0\r\n X-A: a\r\n\r\n", 0},
		{"trailer without colon", "0\r\nX-Foo\r\n\r\n", 0},
		{"trailer empty name", "0\r\n: v\r\n\r\n", 0},
		{"trailer name with space", "0\r\nX Foo: v\r\n\r\n", 0},
		{"trailer space before colon", "0\r\nX-Foo : v\r\n\r\n", 0},
		{"trailer tab before colon", "0\r\nX-Foo\t: v\r\n\r\n", 0},
		{"trailer name with separator", "0\r\nX(Foo): v\r\n\r\n", 0},
		{"trailer name with obs-text", "0\r\nX-\xff: v\r\n\r\n", 0},
		{"trailer name with NUL", "0\r\nX\x00: v\r\n\r\n", 0},
		{"trailer value with NUL", "0\r\nX-A: a\x00b\r\n\r\n", 0},
		{"trailer value with DEL", "0\r\nX-A: a\x7f\r\n\r\n", 0},
		{"trailer value with CR", "0\r\nX-A: a\rb\r\n\r\n", 0},
		{"trailer value ending in CR", "0\r\nX-A: a\r\r\n\r\n", 0},
		{"trailer value with VT", "0\r\nX-A: \x0b\r\n\r\n", 0},
		{"dropped trailer with invalid value", "0\r\nHost: a\x00\r\n\r\n", 0},
		{"dropped trailer with bad name form", "0\r\nHost : a\r\n\r\n", 0},
	}
	for _, tt := range tests {
		bufSize := tt.bufSize
		if bufSize == 0 {
			bufSize = 4096
		}
		for _, w := range sourceWrappers {
			for _, withTrailer := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/trailer=%v", tt.name, w.name, withTrailer)
				var h http.Header
				var hp *http.Header
				if withTrailer {
					hp = &h
				}
				cr := newChunked(w.wrap(strings.NewReader(tt.body)), bufSize, 4096, hp)
				_, err := readAllSize(t, cr, 7)
				if err != ErrMalformedChunk {
					t.Errorf("%s: body %q: error %v, want ErrMalformedChunk", name, tt.body, err)
				}
			}
		}
	}

	// The long lines above are only refused because of the small buffer.
	for _, body := range []string{longExt, longTrailer} {
		cr := newChunked(strings.NewReader(body), 4096, 4096, nil)
		if _, err := readAllSize(t, cr, 7); err != io.EOF {
			t.Errorf("body %q with a large buffer: error %v, want io.EOF", body, err)
		}
	}
}

// TestChunkedReaderMaxSize checks that the largest 15-digit size is accepted (and is not
// truncated or overflowed) by feeding only part of it.
func TestChunkedReaderMaxSize(t *testing.T) {
	const size = 1<<60 - 1
	cr := newChunked(strings.NewReader("fffffffffffffff\r\nabc"), 64, 64, nil)
	got, err := readAllSize(t, cr, 2)
	if err != io.ErrUnexpectedEOF || string(got) != "abc" {
		t.Fatalf("got %q, %v, want %q, io.ErrUnexpectedEOF", got, err, "abc")
	}
	if cr.remain != size-3 {
		t.Fatalf("remain = %d, want %d", cr.remain, int64(size-3))
	}
	if n, ok := ParseChunkSize("fffffffffffffff"); !ok || n != size {
		t.Fatalf("ParseChunkSize(15 f) = %d, %v", n, ok)
	}
}

func TestParseChunkSize(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"0", 0, true},
		{"000", 0, true},
		{"1", 1, true},
		{"a", 10, true},
		{"A", 10, true},
		{"f", 15, true},
		{"F", 15, true},
		{"10", 16, true},
		{"fF", 255, true},
		{"7fffffff", 0x7fffffff, true},
		{"123456789abcdef", 0x123456789abcdef, true},
		{"fffffffffffffff", 1<<60 - 1, true},
		{"000000000000001", 1, true},
		{"5;ext", 5, true},
		{"5;", 5, true},
		{"5;a=b;c", 5, true},
		{"5 ;a", 5, true},
		{"5\t;a", 5, true},
		{"5 \t ;a", 5, true},
		{"5;a=\"x;y\"", 5, true},
		{"5;\t", 5, true},
		{"5;\xff", 5, true},
		{"", 0, false},
		{" ", 0, false},
		{";", 0, false},
		{" ;a", 0, false},
		{"5 ", 0, false},
		{"5\t", 0, false},
		{" 5", 0, false},
		{"5 5", 0, false},
		{"5 5;a", 0, false},
		{" 5;a", 0, false},
		{"g", 0, false},
		{"x", 0, false},
		{"0x5", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.0", 0, false},
		{"1_0", 0, false},
		{"ffffffffffffffff", 0, false},
		{"0000000000000001", 0, false},
		{"10000000000000000", 0, false},
		{"5\r", 0, false},
		{"5;\r", 0, false},
		{"5;\n", 0, false},
		{"5;\x00", 0, false},
		{"5;\x7f", 0, false},
		{"5;a\x1fb", 0, false},
		{"\xff", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseChunkSize(tt.in)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("ParseChunkSize(%q) = %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// validBodies are complete chunked bodies used by the truncation and pipelining tests.
var validBodies = []struct {
	body, data string
	trailer    http.Header
}{
	{"0\r\n\r\n", "", nil},
	{"5\r\nhello\r\n0\r\n\r\n", "hello", nil},
	{"5;ext=1\r\nhello\r\n6 ;e\r\n world\r\n0;last\r\n\r\n", "hello world", nil},
	{"3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nx-other:  a b \r\nContent-Length: 9\r\n\r\n", "abc",
		http.Header{"X-Checksum": {"1234"}, "X-Other": {"a b"}}},
	{"A\r\n\r\n\r\n\r\n\r\n\r\n\r\n0\r\nA:\r\n\r\n", "\r\n\r\n\r\n\r\n\r\n", http.Header{"A": {""}}},
	{"00001\r\nx\r\n10\r\n0123456789abcdef\r\n000\r\n\r\n", "x0123456789abcdef", nil},
}

func TestChunkedReaderTruncated(t *testing.T) {
	for _, vb := range validBodies {
		for i := 0; i < len(vb.body); i++ {
			for _, w := range sourceWrappers {
				for _, readSize := range []int{1, 5, 4096} {
					name := fmt.Sprintf("%q[:%d]/%s/read%d", vb.body, i, w.name, readSize)
					var h http.Header
					cr := newChunked(w.wrap(strings.NewReader(vb.body[:i])), 4096, 4096, &h)
					got, err := readAllSize(t, cr, readSize)
					if err != io.ErrUnexpectedEOF {
						t.Errorf("%s: error %v, want io.ErrUnexpectedEOF", name, err)
					}
					if !strings.HasPrefix(vb.data, string(got)) {
						t.Errorf("%s: decoded %q, not a prefix of %q", name, got, vb.data)
					}
					// Reading again must not turn the failure into a clean end.
					if n, err := cr.Read(make([]byte, 8)); n != 0 || err == io.EOF || err == nil {
						t.Errorf("%s: Read after ErrUnexpectedEOF = %d, %v", name, n, err)
					}
				}
			}
		}
		// The complete body itself decodes.
		var h http.Header
		cr := newChunked(strings.NewReader(vb.body), 4096, 4096, &h)
		got, err := readAllSize(t, cr, 3)
		if err != io.EOF || string(got) != vb.data {
			t.Errorf("%q: got %q, %v, want %q, io.EOF", vb.body, got, err, vb.data)
		}
		if len(h) != len(vb.trailer) || (len(h) > 0 && !reflect.DeepEqual(h, vb.trailer)) {
			t.Errorf("%q: trailer %q, want %q", vb.body, h, vb.trailer)
		}
	}
}

func TestChunkedReaderReadAfterEOF(t *testing.T) {
	const body = "3\r\nabc\r\n0\r\n\r\n"
	const next = "3\r\nxyz\r\n0\r\n\r\n"
	cr := newChunked(strings.NewReader(body+next), 64, 64, nil)
	got, err := readAllSize(t, cr, 16)
	if err != io.EOF || string(got) != "abc" {
		t.Fatalf("got %q, %v, want %q, io.EOF", got, err, "abc")
	}
	buffered := cr.Src.Buffered()
	for i := 0; i < 5; i++ {
		for _, p := range [][]byte{nil, make([]byte, 1), make([]byte, 100)} {
			if n, err := cr.Read(p); n != 0 || err != io.EOF {
				t.Fatalf("Read #%d (len %d) after EOF = %d, %v, want 0, io.EOF", i, len(p), n, err)
			}
		}
	}
	if b := cr.Src.Buffered(); b != buffered {
		t.Fatalf("Read after EOF consumed input: buffered %d -> %d", buffered, b)
	}
	if rest, _ := io.ReadAll(cr.Src); string(rest) != next {
		t.Fatalf("left %q, want %q", rest, next)
	}
}

func TestChunkedReaderLeavesFollowingBytes(t *testing.T) {
	suffixes := []string{
		"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n",
		"\r\n",
		"\n",
		"X",
		"0\r\n\r\n",
	}
	for _, vb := range validBodies {
		for _, suffix := range suffixes {
			for _, bufSize := range []int{32, 4096} {
				for _, w := range sourceWrappers {
					name := fmt.Sprintf("%q+%q/buf%d/%s", vb.body, suffix, bufSize, w.name)
					var h http.Header
					cr := newChunked(w.wrap(strings.NewReader(vb.body+suffix)), bufSize, 4096, &h)
					got, err := readAllSize(t, cr, 4)
					if err != io.EOF || string(got) != vb.data {
						t.Errorf("%s: got %q, %v, want %q, io.EOF", name, got, err, vb.data)
						continue
					}
					if rest, err := io.ReadAll(cr.Src); err != nil || string(rest) != suffix {
						t.Errorf("%s: left %q, %v, want %q", name, rest, err, suffix)
					}
				}
			}
		}
	}
}

// TestChunkedReaderPipelined decodes several chunked bodies back to back from one bufio.Reader.
func TestChunkedReaderPipelined(t *testing.T) {
	var all strings.Builder
	for _, vb := range validBodies {
		all.WriteString(vb.body)
	}
	for _, bufSize := range []int{32, 64, 4096} {
		br := bufio.NewReaderSize(iotest.HalfReader(strings.NewReader(all.String())), bufSize)
		for i, vb := range validBodies {
			var h http.Header
			cr := &ChunkedReader{Src: br, MaxTrailer: 4096, Trailer: &h}
			got, err := readAllSize(t, cr, 5)
			if err != io.EOF || string(got) != vb.data {
				t.Fatalf("buf%d body %d: got %q, %v, want %q, io.EOF", bufSize, i, got, err, vb.data)
			}
			if len(h) != len(vb.trailer) || (len(h) > 0 && !reflect.DeepEqual(h, vb.trailer)) {
				t.Fatalf("buf%d body %d: trailer %q, want %q", bufSize, i, h, vb.trailer)
			}
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("buf%d: input left after the last body (err %v)", bufSize, err)
		}
	}
}

type errAfterReader struct {
	data string
	err  error
}

func (r *errAfterReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestChunkedReaderSourceError checks that a source error other than io.EOF is passed through
// rather than reported as a framing problem or a clean end.
func TestChunkedReaderSourceError(t *testing.T) {
	errBoom := errors.New("boom")
	for _, prefix := range []string{"", "5", "5\r\n", "5\r\nhel", "5\r\nhello", "5\r\nhello\r", "5\r\nhello\r\n0\r\n", "5\r\nhello\r\n0\r\nX: 1"} {
		cr := newChunked(&errAfterReader{data: prefix, err: errBoom}, 64, 64, nil)
		_, err := readAllSize(t, cr, 2)
		if err != errBoom {
			t.Errorf("prefix %q: error %v, want %v", prefix, err, errBoom)
		}
	}
}

// TestChunkedReaderErrorIsSticky checks that once the reader has reported a framing error it
// does not go on to decode what follows as if nothing had happened.
func TestChunkedReaderErrorIsSticky(t *testing.T) {
	tests := []struct {
		name, body string
		maxTrailer int
		first      error
	}{
		{"bad size line", "zz\r\n3\r\nabc\r\n0\r\n\r\n", 64, ErrMalformedChunk},
		{"bad data CRLF", "1\r\naXY3\r\nabc\r\n0\r\n\r\n", 64, ErrMalformedChunk},
		{"trailer too large", "0\r\nX-Big: 0123456789\r\n0\r\n\r\n", 8, ErrTrailerTooLarge},
		{"bad trailer", "0\r\nbad trailer\r\n0\r\n\r\n", 64, ErrMalformedChunk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := newChunked(strings.NewReader(tt.body), 64, tt.maxTrailer, nil)
			if _, err := readAllSize(t, cr, 64); err != tt.first {
				t.Fatalf("first error %v, want %v", err, tt.first)
			}
			// Keep reading: no later call may yield data or a clean io.EOF.
			p := make([]byte, 64)
			for i := 0; i < 20; i++ {
				n, err := cr.Read(p)
				if err == nil || err == io.EOF || n != 0 {
					t.Fatalf("errors are not sticky: after %v, Read #%d returned %q, %v", tt.first, i+2, p[:n], err)
				}
			}
		})
	}
}

// TestChunkedReaderNoTrailersOnError checks that a trailer section that is refused leaves
// nothing behind in the caller's map.
func TestChunkedReaderNoTrailersOnError(t *testing.T) {
	tests := []struct {
		name, body string
		maxTrailer int
		wantErr    error
	}{
		{"obs-fold after a good field", "0\r\nX-A: a\r\n b\r\n\r\n", 64, ErrMalformedChunk},
		{"bad field after a good field", "0\r\nX-A: a\r\nX B: b\r\n\r\n", 64, ErrMalformedChunk},
		{"limit reached after a good field", "0\r\nX-A: a\r\nX-B: 0123456789\r\n\r\n", 12, ErrTrailerTooLarge},
		{"truncated after a good field", "0\r\nX-A: a\r\nX-B", 64, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			cr := newChunked(strings.NewReader(tt.body), 64, tt.maxTrailer, &h)
			if _, err := readAllSize(t, cr, 64); err != tt.wantErr {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if len(h) != 0 {
				t.Fatalf("partial trailers kept on error: %q left %q in the trailer map", tt.body, h)
			}
		})
	}
}

// Reference decoder for the fuzz target: a direct transcription of the grammar the
// ChunkedReader documents, written with regular expressions and bytes.Index.
var (
	refSizeLine    = regexp.MustCompile(`^([0-9A-Fa-f]{1,15})(?:[ \t]*;[^\x00-\x08\x0a-\x1f\x7f]*)?$`)
	refTrailerLine = regexp.MustCompile("^([!#$%&'*+\\-.^_`|~0-9A-Za-z]+):([^\\x00-\\x08\\x0a-\\x1f\\x7f]*)$")
	refDropped     = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Host": true,
		"Trailer": true, "Connection": true, "Te": true, "Expect": true}
)

// refDecode decodes a complete chunked body from in. ok is false when in does not start with
// a complete, well-formed chunked body. rest is what follows the body.
func refDecode(in []byte) (data []byte, trailer http.Header, rest []byte, ok bool) {
	nextLine := func() (string, bool) {
		i := bytes.IndexByte(in, '\n')
		if i < 1 || in[i-1] != '\r' {
			return "", false
		}
		l := string(in[:i-1])
		in = in[i+1:]
		return l, true
	}
	data = []byte{}
	for {
		l, ok := nextLine()
		if !ok {
			return nil, nil, nil, false
		}
		m := refSizeLine.FindStringSubmatch(l)
		if m == nil {
			return nil, nil, nil, false
		}
		n, err := strconv.ParseUint(m[1], 16, 64)
		if err != nil {
			panic(err)
		}
		if n == 0 {
			break
		}
		if uint64(len(in)) < n+2 || in[n] != '\r' || in[n+1] != '\n' {
			return nil, nil, nil, false
		}
		data = append(data, in[:n]...)
		in = in[n+2:]
	}
	trailer = http.Header{}
	for {
		l, ok := nextLine()
		if !ok {
			return nil, nil, nil, false
		}
		if l == "" {
			return data, trailer, in, true
		}
		m := refTrailerLine.FindStringSubmatch(l)
		if m == nil {
			return nil, nil, nil, false
		}
		key := textproto.CanonicalMIMEHeaderKey(m[1])
		if refDropped[key] {
			continue
		}
		trailer[key] = append(trailer[key], strings.Trim(m[2], " \t"))
	}
}

// encodeChunked writes data as a chunked body with chunks of at most size bytes and the
// given trailer fields.
func encodeChunked(data []byte, size int, ext bool, trailer http.Header) []byte {
	var b bytes.Buffer
	for len(data) > 0 {
		n := min(size, len(data))
		fmt.Fprintf(&b, "%x", n)
		if ext {
			b.WriteString(" ;x=\"y\"")
		}
		b.WriteString("\r\n")
		b.Write(data[:n])
		b.WriteString("\r\n")
		data = data[n:]
	}
	b.WriteString("0\r\n")
	for k, vs := range trailer {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func sameTrailer(a, b http.Header) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

func FuzzChunkedReader(f *testing.F) {
	for _, vb := range validBodies {
		f.Add([]byte(vb.body), uint8(0), uint8(3), uint8(2))
	}
	seeds := []string{
		"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n",
		"5;a=b\r\nhello\r\n0\r\nX: y\r\nHost: h\r\n\r\n",
		"fffffffffffffff\r\nabc",
		"ffffffffffffffff\r\n",
		"0x5\r\nhello\r\n0\r\n\r\n",
		"-1\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"5\r\nhello\n0\r\n\r\n",
		"3\r\nhello\r\n0\r\n\r\n",
		"0\r\nX: a\r\n b\r\n\r\n",
		"0\r\nX-Foo\r\n\r\n",
		"0\r\nTE: trailers\r\nconnection: close\r\nX-Kept: 1\r\nexpect: x\r\nTrailer: a\r\n\r\n",
		"0\r\nX: \x00\r\n\r\n",
		"0\r\n" + strings.Repeat("a:b\r\n", 20) + "\r\n",
		"5;" + strings.Repeat("x", 40) + "\r\nhello\r\n0\r\n\r\n",
		"",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i*7), uint8(i*13+1), uint8(i+1))
	}
	allowed := func(err error) bool {
		return err == io.EOF || err == io.ErrUnexpectedEOF || err == ErrMalformedChunk || err == ErrTrailerTooLarge
	}
	f.Fuzz(func(t *testing.T, in []byte, small, readSize, chunkSize uint8) {
		wantData, wantTrailer, wantRest, refOK := refDecode(in)
		rs := int(readSize)%64 + 1

		// Pass 1: a buffer larger than the input and no effective trailer limit, so the
		// reader and the reference must agree exactly.
		var h http.Header
		cr := newChunked(bytes.NewReader(in), len(in)+16, len(in)+1, &h)
		got, err := readAllSize(t, cr, rs)
		if !allowed(err) || err == ErrTrailerTooLarge {
			t.Fatalf("input %q: unexpected error %v", in, err)
		}
		if refOK != (err == io.EOF) {
			t.Fatalf("input %q: reader returned %v (data %q), reference ok=%v", in, err, got, refOK)
		}
		if err == io.ErrUnexpectedEOF && cr.Src.Buffered() != 0 {
			t.Fatalf("input %q: ErrUnexpectedEOF with %d bytes unread", in, cr.Src.Buffered())
		}
		if err == io.EOF {
			if !bytes.Equal(got, wantData) {
				t.Fatalf("input %q: decoded %q, reference %q", in, got, wantData)
			}
			if !sameTrailer(h, wantTrailer) {
				t.Fatalf("input %q: trailer %q, reference %q", in, h, wantTrailer)
			}
			rest, _ := io.ReadAll(cr.Src)
			if !bytes.Equal(rest, wantRest) {
				t.Fatalf("input %q: left %q, reference %q", in, rest, wantRest)
			}
			if n, err := cr.Read(make([]byte, 4)); n != 0 || err != io.EOF {
				t.Fatalf("input %q: Read after EOF = %d, %v", in, n, err)
			}

			// Round trip: re-encode and decode again.
			enc := encodeChunked(got, int(chunkSize)+1, chunkSize%2 == 0, h)
			var h2 http.Header
			cr2 := newChunked(bytes.NewReader(enc), 4096, len(enc), &h2)
			got2, err := readAllSize(t, cr2, rs)
			if err != io.EOF || !bytes.Equal(got2, got) {
				t.Fatalf("round trip of %q via %q: got %q, %v", got, enc, got2, err)
			}
			if !sameTrailer(h2, h) {
				t.Fatalf("round trip of trailer %q via %q: got %q", h, enc, h2)
			}
		} else if len(got) > len(in) {
			t.Fatalf("input %q: decoded more (%d bytes) than the input", in, len(got))
		}

		// Pass 2: a small buffer, a small trailer limit and a one-byte source. Any result is
		// possible, but a clean end must still match the reference.
		var h3 http.Header
		cr3 := newChunked(iotest.OneByteReader(bytes.NewReader(in)), 16+int(small)%32, int(small), &h3)
		got3, err := readAllSize(t, cr3, rs)
		if !allowed(err) {
			t.Fatalf("input %q (small buffer): unexpected error %v", in, err)
		}
		if err == io.EOF {
			if !refOK || !bytes.Equal(got3, wantData) || !sameTrailer(h3, wantTrailer) {
				t.Fatalf("input %q (small buffer): decoded %q trailer %q, reference ok=%v %q %q",
					in, got3, h3, refOK, wantData, wantTrailer)
			}
		}
	})
}
