package h1

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

const bufSize = 4096

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

func getReader(r io.Reader) *bufio.Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

func getWriter(w io.Writer) *bufio.Writer {
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

func putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	writerPool.Put(bw)
}

var urlRoot = url.URL{Path: "/"}

func validHost(h string) bool { return httpguts.ValidHostHeader(h) }

// dateCache holds the Date header value of the current second.
type dateCache struct {
	sec int64
	s   string
}

var date atomic.Pointer[dateCache]

// httpDate returns the current time in the HTTP Date format, formatted once per second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := date.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &dateCache{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	date.Store(d)
	return d.s
}
