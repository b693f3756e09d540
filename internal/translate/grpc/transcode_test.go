package grpc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/translate/grpc/grpctest"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// errReset is what net/http's HTTP/2 transport reports when the server resets the stream.
var errReset = errors.New("stream error: stream ID 3; CANCEL; received from peer")

// resetAfter is a transport whose gRPC server resets the stream at a chosen time relative to
// the call's deadline, ignoring the call's cancellation: the order in which a real server's
// own deadline (sent as grpc-timeout) and the gateway's fire is a race, and this pins it.
type resetAfter struct {
	slack    time.Duration // the reset comes this long after the deadline (negative: before)
	headers  bool          // answer 200 first, and reset while the body is read
	deadline chan bool     // receives whether the call had a deadline
}

func (rt *resetAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	dl, ok := r.Context().Deadline()
	rt.deadline <- ok
	if !ok {
		return nil, errors.New("no deadline")
	}
	at := dl.Add(rt.slack)
	if !rt.headers {
		time.Sleep(time.Until(at))
		return nil, errReset
	}
	h := http.Header{"Content-Type": {"application/grpc"}}
	return &http.Response{StatusCode: 200, Header: h, Body: &resetBody{at: at}, Request: r}, nil
}

type resetBody struct{ at time.Time }

func (b *resetBody) Read([]byte) (int, error) {
	time.Sleep(time.Until(b.at))
	return 0, errReset
}

func (b *resetBody) Close() error { return nil }

// TestResetPastDeadlineIsTimeout: a stream reset that arrives once the call's deadline has
// passed answers 504 deadline_exceeded, before headers and while reading the body; the same
// reset before the deadline is an upstream failure.
func TestResetPastDeadlineIsTimeout(t *testing.T) {
	files := grpctest.Compile(t)
	for _, tt := range []struct {
		name    string
		slack   time.Duration
		headers bool
		status  int
		code    string
	}{
		{"before headers, past the deadline", 5 * time.Millisecond, false, http.StatusGatewayTimeout, "gateway_timeout"},
		{"in the body, past the deadline", 5 * time.Millisecond, true, http.StatusGatewayTimeout, "deadline_exceeded"},
		{"before headers, in time", -150 * time.Millisecond, false, http.StatusBadGateway, "bad_gateway"},
		{"in the body, in time", -150 * time.Millisecond, true, http.StatusServiceUnavailable, "unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rt := &resetAfter{slack: tt.slack, headers: tt.headers, deadline: make(chan bool, 1)}
			u, _ := url.Parse("http://127.0.0.1:1")
			svc, err := upstream.NewService(upstream.ServiceConfig{Name: "users", Targets: []*upstream.Target{upstream.NewTarget(u, 1)},
				Balancer: upstream.RoundRobin, Transport: rt})
			if err != nil {
				t.Fatal(err)
			}
			h, _, err := New(Options{Route: "sleep", Upstream: svc, Files: files, Method: grpctest.ServiceName + "/Sleep",
				Body: "*", RequestTimeout: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/api/sleep", strings.NewReader(`{"millis":"3000"}`))
			h.ServeHTTP(rec, req.WithContext(context.Background()))
			if !<-rt.deadline {
				t.Fatal("the call had no deadline")
			}
			var e struct{ Error string }
			body, _ := io.ReadAll(rec.Body)
			_ = json.Unmarshal(body, &e)
			if rec.Code != tt.status || e.Error != tt.code {
				t.Errorf("got %d %s, want %d %s", rec.Code, body, tt.status, tt.code)
			}
		})
	}
}
