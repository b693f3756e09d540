package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestShutdown: idle connections close at once, the in-flight request finishes with
// Connection: close, then Shutdown and Serve return. Not parallel: it checks for leaked
// goroutines.
func TestShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	entered := make(chan struct{})
	release := make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		ok(w, r)
	})
	idle := dial(t, ts.addr)
	idle.expectOpen()
	fresh := dial(t, ts.addr) // never sends a request
	busy := dial(t, ts.addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	within(t, entered, "the handler")

	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(context.Background()) }()
	idle.expectClosed()
	fresh.expectClosed()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a request was in flight", err)
	default:
	}
	if c, err := net.DialTimeout("tcp", ts.addr, wait); err == nil {
		// Accepted by the kernel before the listener closed? Then it must be closed unserved.
		cl := &client{t: t, Conn: c, br: bufio.NewReader(c)}
		_ = c.SetDeadline(time.Now().Add(wait))
		cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		cl.expectClosed()
		_ = c.Close()
	}

	close(release)
	r := busy.read("GET")
	if r.body != "ok" || !r.Close {
		t.Fatalf("in-flight response %q close=%v", r.body, r.Close)
	}
	busy.expectClosed()
	if err := within(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := within(t, ts.served, "Serve"); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	ts.served <- http.ErrServerClosed // for the cleanup's check
	if n := ts.openConns(); n != 0 {
		t.Errorf("%d connections still tracked", n)
	}
	if n := ts.calls.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
	// Serving again on a shut-down server is refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ts.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownContextExpires(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	entered := make(chan struct{})
	canceled := make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // until Close ends the connection
		close(canceled)
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	within(t, entered, "the handler")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	// Close ends what Shutdown waited for: the connection closes without a response and the
	// handler's context is canceled.
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	within(t, canceled, "the handler's context")
	c.expectClosed()
	if err := within(t, ts.served, "Serve"); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	ts.served <- http.ErrServerClosed
}

func TestClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{}, 1)
	done := make(chan struct{})
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				entered <- struct{}{}
				<-r.Context().Done()
				close(done)
				return
			}
			_, _ = io.WriteString(w, "ok")
		}),
		Logger: slog.New(slog.DiscardHandler),
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()
	idle := dial(t, addr)
	idle.expectOpen()
	busy := dial(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	within(t, entered, "the handler")
	half := dial(t, addr)
	half.send("GET / HTTP/1.1\r\n")

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := within(t, served, "Serve"); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	idle.expectClosed()
	busy.expectClosed()
	half.expectClosed()
	within(t, done, "the handler's context")
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after Close: %v", err)
	}
}
