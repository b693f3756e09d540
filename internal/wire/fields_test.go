package wire

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParseFields(t *testing.T) {
	for _, tc := range []struct {
		block string
		want  http.Header
		err   FieldError
	}{
		{"\r\n", http.Header{}, FieldOK},
		{"a: 1\r\nB:2\r\nA:  3 \t\r\n\r\n", http.Header{"A": {"1", "3"}, "B": {"2"}}, FieldOK},
		{"content-type: text/plain\r\n\r\n", http.Header{"Content-Type": {"text/plain"}}, FieldOK},
		{"X-Empty:\r\n\r\n", http.Header{"X-Empty": {""}}, FieldOK},
		{" folded: x\r\n\r\n", nil, FieldFolded},
		{"a: 1\r\n\tmore\r\n\r\n", nil, FieldFolded},
		{"no colon\r\n\r\n", nil, FieldNoName},
		{": no name\r\n\r\n", nil, FieldNoName},
		{"a b: 1\r\n\r\n", nil, FieldBadName},
		{"a : 1\r\n\r\n", nil, FieldBadName},
		{"a: x\x00y\r\n\r\n", nil, FieldBadValue},
		{"a: x\ry\r\n\r\n", nil, FieldBadValue},
		{"a: 1\r\n", nil, FieldNoName}, // no empty line
		{"", nil, FieldNoName},
	} {
		h, err := ParseFields(tc.block)
		if err != tc.err || (err == FieldOK && !reflect.DeepEqual(h, tc.want)) {
			t.Errorf("ParseFields(%q) = %v, %v; want %v, %v", tc.block, h, err, tc.want, tc.err)
		}
	}
	// Appending to one field's values must not overwrite another's (each value slice is capped).
	h, _ := ParseFields("A: 1\r\nB: 2\r\n\r\n")
	h["A"] = append(h["A"], "x")
	if h.Get("B") != "2" {
		t.Fatalf("append to A changed B to %q", h.Get("B"))
	}
}

func TestReadFixed(t *testing.T) {
	src := bufio.NewReader(strings.NewReader("hello world"))
	remain := int64(5)
	p := make([]byte, 3)
	n, err := ReadFixed(src, p, &remain)
	if n != 3 || err != nil || string(p[:n]) != "hel" || remain != 2 {
		t.Fatalf("first read: %d %v %q remain %d", n, err, p[:n], remain)
	}
	n, err = ReadFixed(src, p, &remain)
	if n != 2 || err != io.EOF || string(p[:n]) != "lo" || remain != 0 {
		t.Fatalf("last read: %d %v %q remain %d, want the last bytes with io.EOF", n, err, p[:n], remain)
	}
	if n, err = ReadFixed(src, p, &remain); n != 0 || err != io.EOF {
		t.Fatalf("after the end: %d %v", n, err)
	}
	if rest, _ := io.ReadAll(src); string(rest) != " world" {
		t.Fatalf("read past the body: left %q", rest)
	}
	short, shortSrc := int64(10), bufio.NewReader(strings.NewReader("abc"))
	if _, err := io.ReadAll(readerFunc(func(p []byte) (int, error) {
		return ReadFixed(shortSrc, p, &short)
	})); err != io.ErrUnexpectedEOF {
		t.Fatalf("short body: %v, want io.ErrUnexpectedEOF", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
