package telemetry

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleRecord() *AccessRecord {
	return &AccessRecord{
		Time: time.Date(2026, 11, 29, 6, 0, 0, 123000000, time.UTC), RequestID: "req-1", ClientIP: "203.0.113.7",
		Method: "GET", Host: "api.example.com", Path: "/users/7", Proto: "HTTP/1.1", Route: "users",
		Service: "users", Target: "10.0.0.1:8080", Status: 200, Bytes: 42,
		Duration: 1500 * time.Microsecond, Upstream: 1200 * time.Microsecond,
	}
}

func TestAccessLogJSON(t *testing.T) {
	var buf bytes.Buffer
	l := NewAccessLogger(&buf, FormatJSON)
	rec := sampleRecord()
	l.Log(rec)
	rec.Host = "evil\"host\n\x00\xff"
	rec.ErrorCode = "bad_gateway"
	l.Log(rec)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("line is not JSON: %v: %s", err, lines[0])
	}
	want := map[string]any{
		"time": "2026-11-29T06:00:00.123Z", "msg": "request", "request_id": "req-1", "client_ip": "203.0.113.7",
		"method": "GET", "host": "api.example.com", "path": "/users/7", "route": "users", "service": "users",
		"target": "10.0.0.1:8080", "status": 200.0, "bytes": 42.0, "duration_ms": 1.5, "upstream_ms": 1.2,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if _, ok := m["error"]; ok {
		t.Error("error field present without an error")
	}
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatalf("hostile host broke the JSON line: %v: %s", err, lines[1])
	}
	if m["host"] != "evil\"host\n\x00\ufffd" || m["error"] != "bad_gateway" {
		t.Errorf("host %q error %v", m["host"], m["error"])
	}
}

func TestAccessLogCommon(t *testing.T) {
	var buf bytes.Buffer
	l := NewAccessLogger(&buf, FormatCommon)
	rec := sampleRecord()
	rec.Path = "/a\"b\n"
	l.Log(rec)
	want := `203.0.113.7 - - [29/Nov/2026:06:00:00 +0000] "GET /a\"b\x0a HTTP/1.1" 200 42 "req-1"` + "\n"
	if buf.String() != want {
		t.Fatalf("got  %q\nwant %q", buf.String(), want)
	}
}

func TestBufferedWriterFlushes(t *testing.T) {
	var mu lockedBuffer
	w := NewBufferedWriter(&mu, 1<<10, 20*time.Millisecond)
	_, _ = w.Write([]byte("line\n"))
	if mu.String() != "" {
		t.Fatal("written through despite the buffer")
	}
	deadline := time.Now().Add(2 * time.Second)
	for mu.String() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if mu.String() != "line\n" {
		t.Fatalf("periodic flush missing: %q", mu.String())
	}
	_, _ = w.Write([]byte("last\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if mu.String() != "line\nlast\n" {
		t.Fatalf("close did not flush: %q", mu.String())
	}
}

func BenchmarkAccessLogJSON(b *testing.B) {
	l := NewAccessLogger(discard{}, FormatJSON)
	rec := sampleRecord()
	b.ReportAllocs()
	for b.Loop() {
		l.Log(rec)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
