package httpx

import (
	"bufio"
	"net"
	"net/http"
)

// StatusWriter records the status and body size of a response; Unwrap lets
// http.ResponseController reach Flush and Hijack of the underlying writer (streaming and
// upgrades).
type StatusWriter struct {
	http.ResponseWriter
	// Status is the final status written (0 before the head).
	Status int
	// Bytes counts the body bytes written.
	Bytes int64
}

// WriteHeader records the first final status and passes it on.
func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 && code >= 200 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write counts the body bytes (an implicit 200 if no status was written).
func (w *StatusWriter) Write(p []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.Bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (w *StatusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack implements http.Hijacker (for upgrades; status 101).
func (w *StatusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.Status == 0 {
		w.Status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// AdoptHeader passes AdoptHeader on to the underlying writer.
func (w *StatusWriter) AdoptHeader(h http.Header) bool { return AdoptHeader(w.ResponseWriter, h) }

// HeaderAdopter is a ResponseWriter that can take a header map built elsewhere as its own, so
// that a proxy hands it the upstream response's map instead of copying every field into a
// second one. A wrapper implements it only if its Header is the underlying writer's (it then
// passes the call on) and it keeps no reference to the map it got from Header earlier.
type HeaderAdopter interface {
	// AdoptHeader makes h the response's header map and reports whether it did. It may
	// decline (the response's own map was already handed out, or its head is written); the
	// caller then copies h's fields into Header(). Once adopted, the caller gives h up.
	AdoptHeader(h http.Header) bool
}

// AdoptHeader hands h to w when w is a HeaderAdopter; it reports false (h not taken) otherwise.
func AdoptHeader(w http.ResponseWriter, h http.Header) bool {
	a, ok := w.(HeaderAdopter)
	return ok && a.AdoptHeader(h)
}
