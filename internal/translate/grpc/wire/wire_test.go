package wire

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

func TestTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100m", 100 * time.Millisecond, true}, {"5S", 5 * time.Second, true}, {"2H", 2 * time.Hour, true},
		{"7u", 7 * time.Microsecond, true}, {"99999999n", 99999999, true}, {"1M", time.Minute, true},
		{"", 0, false}, {"5", 0, false}, {"5s", 0, false}, {"123456789S", 0, false}, {"-1S", 0, false},
	} {
		got, ok := ParseTimeout(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	for _, d := range []time.Duration{time.Nanosecond, 1500 * time.Microsecond, 30 * time.Second, 10 * time.Minute, 1000 * time.Hour} {
		s := FormatTimeout(d)
		back, ok := ParseTimeout(s)
		if !ok || back < d || len(s) > 9 {
			t.Errorf("FormatTimeout(%v) = %q -> %v, %v", d, s, back, ok)
		}
	}
}

func TestCodesAndMessages(t *testing.T) {
	t.Parallel()
	if NotFound.HTTPStatus() != 404 || Unauthenticated.HTTPStatus() != 401 || ResourceExhausted.HTTPStatus() != 429 ||
		FailedPrecondition.HTTPStatus() != 400 || Code(99).HTTPStatus() != 500 || DeadlineExceeded.HTTPStatus() != 504 {
		t.Error("HTTPStatus mapping")
	}
	if CodeFromHTTP(502) != Unavailable || CodeFromHTTP(504) != DeadlineExceeded || CodeFromHTTP(401) != Unauthenticated || CodeFromHTTP(418) != Unknown {
		t.Error("CodeFromHTTP mapping")
	}
	if NotFound.String() != "not_found" || Code(99).String() != "unknown" {
		t.Error("String")
	}
	msg := "100% sure\nnaïve"
	if enc := EncodeMessage(msg); enc != "100%25 sure%0Ana%C3%AFve" || DecodeMessage(enc) != msg {
		t.Errorf("EncodeMessage = %q", enc)
	}
}

func TestWriteError(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Length", "12")
	WriteError(rec, Unavailable, "down\n")
	if rec.Code != 200 || rec.Header().Get("Grpc-Status") != "14" || rec.Header().Get("Grpc-Message") != "down%0A" ||
		rec.Header().Get("Content-Type") != "application/grpc" || rec.Header().Get("Content-Length") != "" {
		t.Errorf("WriteError: %d %v", rec.Code, rec.Header())
	}
	r := httptest.NewRequest(http.MethodPost, "/a.B/C", nil)
	for ct, want := range map[string]bool{"application/grpc": true, "application/grpc+proto": true, "application/grpc-web": false, "application/json": false} {
		r.Header.Set("Content-Type", ct)
		if IsGRPCRequest(r) != want {
			t.Errorf("IsGRPCRequest(%q) = %v", ct, !want)
		}
	}
}

func TestFrames(t *testing.T) {
	t.Parallel()
	buf := AppendFrame(AppendFrame(nil, []byte("one")), nil)
	r := bytes.NewReader(buf)
	if m, err := ReadFrame(r, 10, ""); err != nil || string(m) != "one" {
		t.Fatalf("frame 1 = %q, %v", m, err)
	}
	if m, err := ReadFrame(r, 10, ""); err != nil || len(m) != 0 {
		t.Fatalf("empty frame = %q, %v", m, err)
	}
	if _, err := ReadFrame(r, 10, ""); !errors.Is(err, io.EOF) {
		t.Fatalf("end = %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(AppendFrame(nil, make([]byte, 11))), 10, ""); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized = %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(buf[:6]), 10, ""); err == nil {
		t.Error("truncated frame accepted")
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, _ = zw.Write([]byte("zipped"))
	_ = zw.Close()
	frame := AppendFrame(nil, z.Bytes())
	frame[0] = 1
	if m, err := ReadFrame(bytes.NewReader(frame), 100, "gzip"); err != nil || string(m) != "zipped" {
		t.Errorf("gzip frame = %q, %v", m, err)
	}
	if _, err := ReadFrame(bytes.NewReader(frame), 100, "snappy"); err == nil {
		t.Error("unknown encoding accepted")
	}
}

func TestReadFrameDoesNotTrustTheClaimedLength(t *testing.T) {
	// A frame header claiming 16 MiB followed by 10 bytes: an error, and no 16 MiB allocation.
	frame := append([]byte{0, 0x01, 0x00, 0x00, 0x00}, make([]byte, 10)...) // 0x01000000 = 16 MiB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(bytes.NewReader(frame), 32<<20, "")
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("truncated frame accepted")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("reading a truncated frame allocated %d bytes", grew)
	}
}
