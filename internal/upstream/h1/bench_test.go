package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// benchBackend is a minimal keep-alive HTTP/1.1 server (GET only, fixed answer), so that the
// benchmark measures the client side rather than a server.
func benchBackend(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// Read one request head; requests in the benchmark have no body.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if bytes.Equal(line, []byte("\r\n")) {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return "http://" + ln.Addr().String()
}

func benchTransports(b *testing.B) map[string]func() (http.RoundTripper, func()) {
	std := func() *http.Transport {
		return &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	}
	return map[string]func() (http.RoundTripper, func()){
		"stdlib": func() (http.RoundTripper, func()) {
			t := std()
			return t, t.CloseIdleConnections
		},
		"h1": func() (http.RoundTripper, func()) {
			t, err := New(Options{MaxIdlePerTarget: 256, Fallback: std()})
			if err != nil {
				b.Fatal(err)
			}
			return t, t.CloseIdleConnections
		},
	}
}

func benchRoundTrip(b *testing.B, rt http.RoundTripper, req *http.Request, buf []byte) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyBuffer(io.Discard, resp.Body, buf); err != nil {
		b.Fatal(err)
	}
	_ = resp.Body.Close()
}

// BenchmarkRoundTrip compares one GET at a time (with a proxy-like header set) through h1 and
// through net/http's Transport.
func BenchmarkRoundTrip(b *testing.B) {
	url := benchBackend(b)
	for _, name := range []string{"stdlib", "h1"} {
		b.Run(name, func(b *testing.B) {
			rt, closeFn := benchTransports(b)[name]()
			defer closeFn()
			req, _ := http.NewRequest("GET", url+"/bench?x=1", nil)
			req.Header.Set("X-Forwarded-For", "127.0.0.1")
			req.Header.Set("X-Forwarded-Proto", "http")
			req.Header.Set("X-Request-Id", "01a2260d-b4a2-7ca7-9bb7-80652054e7b5")
			req.Header.Set("User-Agent", "wrk")
			buf := make([]byte, 32<<10)
			b.ReportAllocs()
			for b.Loop() {
				benchRoundTrip(b, rt, req, buf)
			}
		})
	}
}

// BenchmarkRoundTripParallel runs GOMAXPROCS×4 concurrent callers, as a loaded proxy does.
func BenchmarkRoundTripParallel(b *testing.B) {
	url := benchBackend(b)
	for _, name := range []string{"stdlib", "h1"} {
		b.Run(name, func(b *testing.B) {
			rt, closeFn := benchTransports(b)[name]()
			defer closeFn()
			b.SetParallelism(4)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", url+"/bench", nil)
				buf := make([]byte, 32<<10)
				for pb.Next() {
					benchRoundTrip(b, rt, req, buf)
				}
			})
		})
	}
}
