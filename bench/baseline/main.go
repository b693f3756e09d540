// Command baseline is the benchmark's reference Go proxy: a bare httputil.ReverseProxy in front
// of one backend, with a Transport tuned the way a gateway's would be (large idle pool, no
// compression, no HTTP/2) and a pooled copy buffer. It does no routing, logging or middleware,
// so the gap between it and Gatehouse is what Gatehouse's own features cost. bench/run.sh builds
// and starts it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9081", "address to serve on")
	backend := flag.String("backend", "http://127.0.0.1:9000", "backend base URL")
	pooled := flag.Bool("buffer-pool", false, "reuse response copy buffers (false: ReverseProxy allocates 32KiB per request)")
	flag.Parse()

	if err := run(*listen, *backend, *pooled); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(listen, backend string, pooled bool) error {
	target, err := url.Parse(backend)
	if err != nil {
		return fmt.Errorf("backend url: %w", err)
	}
	if target.Scheme == "" || target.Host == "" {
		return fmt.Errorf("backend url %q: want http://host:port", backend)
	}

	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 nil, // loopback benchmark: never consult HTTP_PROXY
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}

	// Same work as httputil.NewSingleHostReverseProxy (target URL, client Host kept,
	// X-Forwarded-For added), written with Rewrite because Director is deprecated.
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: transport,
		ErrorLog:  log.New(os.Stderr, "baseline: ", log.LstdFlags),
	}
	if pooled {
		// Without a pool ReverseProxy allocates a fresh 32KiB buffer for every response body;
		// Gatehouse pools them, and a baseline should be the cheapest plain ReverseProxy.
		proxy.BufferPool = &bufferPool{}
	}

	srv := &http.Server{
		Addr:              listen,
		Handler:           proxy,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	transport.CloseIdleConnections()
	return nil
}

// bufferPool recycles ReverseProxy's response copy buffers.
type bufferPool struct{ p sync.Pool }

var _ httputil.BufferPool = (*bufferPool)(nil)

// Get returns a 32KiB buffer, reused when one is free.
func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

// Put makes buf available to a later Get.
func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
