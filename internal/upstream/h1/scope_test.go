package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
)

// The gateway's requests carry a reqctx.Scope: the transport registers its abort with it (no
// context.AfterFunc), takes interim responses from its Interim hook, and unregisters when the
// exchange ends.

// A finished exchange leaves nothing registered with the Scope: canceling it afterwards does not
// close the pooled connection, which the next request reuses.
func TestScopeHookReleased(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{})
	sc := reqctx.New(context.Background())
	ports := map[string]bool{}
	for i := range 3 {
		req, _ := http.NewRequestWithContext(sc, "GET", fmt.Sprintf("%s/%d", srv.URL, i), nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		ports[resp.Header.Get("X-Port")] = true
	}
	sc.Cancel()
	if st := tr.Stats(hostOf(srv)); st.Idle != 1 {
		t.Fatalf("after the scope's cancel: %+v, want the connection idle in the pool", st)
	}
	resp, _ := do(t, tr, "GET", srv.URL+"/after", nil)
	ports[resp.Header.Get("X-Port")] = true
	if len(ports) != 1 {
		t.Fatalf("requests used %d connections, want 1", len(ports))
	}
	// A request on a canceled Scope fails at once.
	req, _ := http.NewRequestWithContext(sc, "GET", srv.URL+"/late", nil)
	if _, err := tr.RoundTrip(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("request on a canceled scope: %v", err)
	}
}

func TestScopeInterim(t *testing.T) {
	url := earlyHintsServer(t)
	tr, _ := newTransport(t, Options{})
	var got []string
	sc := reqctx.New(context.Background())
	defer sc.Cancel()
	sc.Interim = reqctx.InterimFunc(func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprint(code, " ", h.Get("Link")))
		return nil
	})
	if code, b := roundTripSeen(t, tr, sc, url); code != 200 || b != "ok" || len(got) != 1 || got[0] != "103 </a.css>; rel=preload" {
		t.Fatalf("response %d %q, interim seen %q", code, b, got)
	}
	// An error from the hook aborts the exchange.
	sc2 := reqctx.New(context.Background())
	defer sc2.Cancel()
	sc2.Interim = reqctx.InterimFunc(func(int, textproto.MIMEHeader) error { return errors.New("no hints, thanks") })
	req2, _ := http.NewRequestWithContext(sc2, "GET", url+"/", nil)
	if _, err := tr.RoundTrip(req2); err == nil || !strings.Contains(err.Error(), "no hints") {
		t.Fatalf("err = %v, want the hook's error", err)
	}
}

// fallbackEarlyHints starts an https target that sends a 103 (Link </b.css>) before "tls ok",
// and a Transport whose fallback (the stdlib Transport, which https targets go to) trusts it.
func fallbackEarlyHints(t *testing.T) (*Transport, string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</b.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "tls ok")
	}))
	t.Cleanup(srv.Close)
	std := srv.Client().Transport.(*http.Transport).Clone()
	std.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test server
	tr, err := New(Options{Fallback: std})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(std.CloseIdleConnections)
	t.Cleanup(tr.CloseIdleConnections)
	return tr, srv.URL
}

// Requests the fallback Transport sends (here an https target) still pass their interim
// responses to the Scope's hook, through a client trace made for them.
func TestScopeInterimThroughFallback(t *testing.T) {
	tr, url := fallbackEarlyHints(t)
	var got []int
	sc := reqctx.New(context.Background())
	defer sc.Cancel()
	sc.Interim = reqctx.InterimFunc(func(code int, h textproto.MIMEHeader) error {
		if h.Get("Link") != "</b.css>; rel=preload" {
			t.Errorf("103 Link %q", h.Get("Link"))
		}
		got = append(got, code)
		return nil
	})
	if _, b := roundTripSeen(t, tr, sc, url); b != "tls ok" || fmt.Sprint(got) != "[103]" {
		t.Fatalf("body %q, interim %v", b, got)
	}
}

func earlyHintsServer(t *testing.T) string {
	return rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readReq(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+okResp)
		}
	})
}

// roundTripSeen sends GET url/ with ctx and returns the status and body.
func roundTripSeen(t *testing.T, tr *Transport, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, string(b)
}

// Interim hooks are found where the layers put them: on a Scope above the one the request
// carries (the proxy sets it on the route's Scope, a per-try timeout makes a child), and in a
// client trace above a Scope (Service.Do's callers), as under context.WithTimeout.
func TestScopeInterimFoundAbove(t *testing.T) {
	url := earlyHintsServer(t)
	tr, _ := newTransport(t, Options{})
	var got []int
	hook := reqctx.InterimFunc(func(code int, _ textproto.MIMEHeader) error { got = append(got, code); return nil })

	route := reqctx.WithTimeout(context.Background(), time.Minute)
	defer route.Cancel()
	route.Interim = hook
	try := reqctx.WithTimeout(route, 30*time.Second)
	defer try.Cancel()
	roundTripSeen(t, tr, try, url)
	if fmt.Sprint(got) != "[103]" {
		t.Fatalf("route Scope's hook through a per-try Scope saw %v, want [103]", got)
	}

	got = nil
	traced := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: hook})
	sc := reqctx.WithTimeout(traced, time.Minute)
	defer sc.Cancel()
	roundTripSeen(t, tr, sc, url)
	if fmt.Sprint(got) != "[103]" {
		t.Fatalf("client trace above a Scope saw %v, want [103]", got)
	}
}

// The nearer of a client trace and a Scope's Interim hook gets the 1xx, and only it: a hook on a
// Scope over a trace wins; a trace over the Scope wins; on the fallback Transport too.
func TestInterimNearestHookWins(t *testing.T) {
	plain := earlyHintsServer(t)
	tr, tlsURL := fallbackEarlyHints(t)

	for _, target := range []struct{ name, url string }{{"h1", plain}, {"fallback", tlsURL}} {
		t.Run(target.name, func(t *testing.T) {
			var trace, hook []int
			connGot := 0
			traced := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(c int, _ textproto.MIMEHeader) error { trace = append(trace, c); return nil },
				GotConn:        func(httptrace.GotConnInfo) { connGot++ },
			})
			sc := reqctx.WithTimeout(traced, time.Minute)
			defer sc.Cancel()
			sc.Interim = reqctx.InterimFunc(func(c int, _ textproto.MIMEHeader) error { hook = append(hook, c); return nil })
			roundTripSeen(t, tr, sc, target.url)
			if fmt.Sprint(hook) != "[103]" || len(trace) != 0 {
				t.Fatalf("hook on a Scope over a trace: hook %v, trace %v; want the hook alone", hook, trace)
			}
			if target.name == "fallback" && connGot == 0 {
				t.Error("the trace's other hooks were lost on the fallback")
			}

			// (httptrace composes the new trace with the one under the Scope: both see it.)
			var top []int
			hook = nil
			over := httptrace.WithClientTrace(sc, &httptrace.ClientTrace{
				Got1xxResponse: func(c int, _ textproto.MIMEHeader) error { top = append(top, c); return nil }})
			roundTripSeen(t, tr, over, target.url)
			if fmt.Sprint(top) != "[103]" || len(hook) != 0 {
				t.Fatalf("trace over the Scope: trace %v, hook %v; want the trace alone", top, hook)
			}
		})
	}
}
