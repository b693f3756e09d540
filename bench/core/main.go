// Command core is Gatehouse's own HTTP/1.1 server and upstream client with nothing between
// them, for reference only: internal/server/h1 parses each request into an *http.Request and
// hands it to a handler that sends it through internal/upstream/h1 (pooled keep-alive
// connections) and writes the response back through the http.ResponseWriter. No router,
// middleware, runtime edge, request ID, forwarding headers, access log, metrics, retries or
// timeouts (the gateway's GC tuning is on, as in cmd/gatehouse): what is left is the cost of the one middleware contract every Gatehouse listener
// shares (net/http's Request, Header maps and ResponseWriter) on top of the sockets.
//
// bench/run.sh runs it as "core", between "floor" (the bare copy loop, no contract) and
// "gatehouse_bare" (the whole gateway with its optional work off), so the gap between floor and
// Gatehouse splits into what the contract costs and what the gateway does on top of it.
//
//	core -listen 127.0.0.1:8081 -upstream 127.0.0.1:8080
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/gatehouse/gatehouse/internal/gctune"
	serverh1 "github.com/gatehouse/gatehouse/internal/server/h1"
	upstreamh1 "github.com/gatehouse/gatehouse/internal/upstream/h1"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	upstream := flag.String("upstream", "", "host:port of the backend")
	flag.Parse()
	if *upstream == "" {
		log.Fatal("core: -upstream is required")
	}
	defer gctune.Start()() // the gateway's garbage collector setting
	t, err := upstreamh1.New(upstreamh1.Options{
		MaxIdlePerTarget: 256,
		Fallback:         http.DefaultTransport,
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &serverh1.Server{Handler: &forwarder{t: t, target: *upstream}}
	log.Fatal(srv.Serve(ln))
}

type forwarder struct {
	t      http.RoundTripper
	target string
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// outbound is the upstream request with its URL in one allocation, as the gateway's proxy
// makes it.
type outbound struct {
	req http.Request
	url url.URL
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := &outbound{}
	o.url = url.URL{Scheme: "http", Host: f.target, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	o.req = http.Request{
		Method: r.Method, URL: &o.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: r.Header, Host: r.Host, Body: r.Body, ContentLength: r.ContentLength,
	}
	resp, err := f.t.RoundTrip(o.req.WithContext(r.Context()))
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, v := range resp.Header {
		if k != "Connection" {
			h[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	bp := bufs.Get().(*[]byte)
	_, _ = io.CopyBuffer(w, resp.Body, *bp)
	bufs.Put(bp)
}
