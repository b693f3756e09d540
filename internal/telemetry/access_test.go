package telemetry

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
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

// appendRFC3339Nano writes what time.RFC3339Nano does, across second boundaries (the cache),
// fractions with and without trailing zeros, other time zones and the ends of the year range.
func TestAppendRFC3339Nano(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 29, 18, 0, 0, 100_000_000, time.UTC),
		time.Date(2026, 11, 29, 18, 0, 0, 1, time.UTC),
		time.Date(2026, 11, 29, 18, 0, 0, 999_999_999, time.UTC),
		time.Date(2026, 11, 29, 23, 59, 59, 5_000, time.FixedZone("X", -7*3600)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 500_000_000, time.UTC),
		time.Now(),
	}
	base := time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
	for range 5000 {
		times = append(times, base.Add(time.Duration(rng.Int64N(int64(10*time.Second)))))
	}
	for _, tm := range times {
		if got, want := string(appendRFC3339Nano(nil, tm)), tm.UTC().Format(time.RFC3339Nano); got != want {
			t.Fatalf("appendRFC3339Nano(%v) = %q, want %q", tm, got, want)
		}
	}
}

// Runs of plain text and escapes mix as encoding/json would quote them (HTML escaping aside).
func TestAppendJSONStringRuns(t *testing.T) {
	for _, s := range []string{"", "plain", `a"b`, `back\slash`, "ctl\x01x", "del\x7f", "é ü", "bad\xffutf8", "mixed \"é\" \n end", strings.Repeat("x", 300) + "\t"} {
		got := string(appendJSONString(nil, s))
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("%q -> %s: not JSON: %v", s, got, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if back != want {
			t.Fatalf("%q -> %s decodes to %q, want %q", s, got, back, want)
		}
	}
}

func TestAppendMillis(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ds := []time.Duration{0, time.Microsecond, 552 * time.Microsecond, 1500 * time.Microsecond, 2 * time.Millisecond,
		999 * time.Nanosecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Hour, -1500 * time.Microsecond,
		-time.Microsecond, math.MaxInt64, math.MinInt64, time.Duration(1<<53) * time.Microsecond}
	for range 20000 {
		ds = append(ds, time.Duration(rng.Int64N(int64(10*time.Minute))))
	}
	// Up to and past 2^52 µs, where the float form starts rounding (a Duration ends near 2^53 µs).
	for e := 40; e <= 53; e++ {
		for range 2000 {
			us := int64(1)<<(e-1) + rng.Int64N(int64(1)<<(e-1))
			ds = append(ds, time.Duration(us)*time.Microsecond, -time.Duration(us)*time.Microsecond)
		}
	}
	for _, d := range ds {
		want := strconv.AppendFloat(nil, float64(d.Microseconds())/1000, 'f', -1, 64)
		if got := appendMillis(nil, d); string(got) != string(want) {
			t.Fatalf("appendMillis(%v) = %s, want %s", d, got, want)
		}
	}
}
