package edge

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Guard sheds load and refuses oversized request targets before any other work is done. One
// Guard lives as long as the server, so its in-flight count spans reloads.
type Guard struct {
	// Logger receives a security event for the first shed request and every 1000th after.
	Logger *slog.Logger
	// Refuse writes the guard's refusals; the server sets it so that they are logged and
	// counted like every other answer. Nil: the JSON error with the request's ID, unrecorded.
	// Set it before serving.
	Refuse      func(w http.ResponseWriter, r *http.Request, status int, code, msg string)
	maxInFlight atomic.Int64
	maxURI      atomic.Int64
	inflight    atomic.Int64
	shed        atomic.Uint64
}

// Configure sets the limits (0: no in-flight cap). Safe to call while serving.
func (g *Guard) Configure(maxInFlight int, maxURIBytes int64) {
	g.maxInFlight.Store(int64(maxInFlight))
	g.maxURI.Store(maxURIBytes)
}

// Shed reports how many requests were shed so far.
func (g *Guard) Shed() uint64 { return g.shed.Load() }

// Wrap returns next guarded: over the in-flight cap → 503 overloaded with Retry-After; a
// request target longer than the limit → 414.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := g.inflight.Add(1)
		defer g.inflight.Add(-1)
		if max := g.maxInFlight.Load(); max > 0 && n > max {
			if shed := g.shed.Add(1); shed%1000 == 1 && g.Logger != nil {
				g.Logger.Warn("security event", "event", "load_shed", "reason", "max_in_flight reached",
					"in_flight", n, "shed_total", shed)
			}
			w.Header().Set("Retry-After", "1")
			g.refuse(w, r, http.StatusServiceUnavailable, "overloaded", "the gateway is at capacity; retry shortly")
			return
		}
		if max := g.maxURI.Load(); max > 0 && int64(len(r.RequestURI)) > max {
			g.refuse(w, r, http.StatusRequestURITooLong, "uri_too_long", "the request URI is too long")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if g.Refuse != nil {
		g.Refuse(w, r, status, code, msg)
		return
	}
	// A request refused before the runtime edge still gets its correlation ID.
	r = r.WithContext(httpx.WithInfo(r.Context(), &httpx.Info{RequestID: httpx.RequestID(r.Header)}))
	httpx.WriteError(w, r, status, code, msg)
}
