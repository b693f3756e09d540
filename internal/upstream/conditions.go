package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
)

// Failure is the kind of failure of one attempt, as named in the config's failure_on and
// retry_on lists.
type Failure uint8

// Failure kinds. An attempt has at most one.
const (
	// NoFailure: the attempt got a response whose status is not listed as a failure.
	NoFailure Failure = iota
	// ConnectError: the target could not be reached (refused, unreachable, DNS, TLS handshake,
	// connect timeout). Nothing was sent.
	ConnectError
	// Timeout: the attempt ran out of time: the response header, per-try or request timeout
	// (one the gateway set; a connect timeout is a ConnectError).
	Timeout
	// Reset: the connection broke after it was established, before the response headers.
	Reset
	// StatusFailure: the response status is one the Conditions list.
	StatusFailure
	// Canceled: the caller went away, a deadline the client set itself passed (see
	// MarkClientDeadline) or its request body could not be read (a ClientBodyError). It is
	// neither a success nor a failure of the target, and is never retried.
	Canceled
)

// String returns the config name of f.
func (f Failure) String() string {
	switch f {
	case NoFailure:
		return "none"
	case ConnectError:
		return "connect_error"
	case Timeout:
		return "timeout"
	case Reset:
		return "reset"
	case StatusFailure:
		return "status"
	case Canceled:
		return "canceled"
	}
	return fmt.Sprintf("failure(%d)", uint8(f))
}

// Conditions says which attempt outcomes count (as a failure for a breaker or passive health
// check, or as retryable for retries). The zero value matches nothing.
type Conditions struct {
	ConnectError bool
	Timeout      bool
	Reset        bool
	// Any5xx matches every status from 500 to 599.
	Any5xx bool
	// GatewayError matches 502, 503 and 504.
	GatewayError bool
	// Statuses are further statuses that match.
	Statuses []int
}

// ParseConditions builds Conditions from the config names (connect_error, timeout, reset, 5xx,
// gateway_error) and extra statuses.
func ParseConditions(names []string, statuses []int) (Conditions, error) {
	c := Conditions{Statuses: slices.Clone(statuses)}
	for _, n := range names {
		switch n {
		case "connect_error":
			c.ConnectError = true
		case "timeout":
			c.Timeout = true
		case "reset":
			c.Reset = true
		case "5xx":
			c.Any5xx = true
		case "gateway_error":
			c.GatewayError = true
		default:
			return Conditions{}, fmt.Errorf("unknown failure condition %q", n)
		}
	}
	return c, nil
}

// MatchStatus reports whether a response status matches.
func (c *Conditions) MatchStatus(status int) bool {
	if c.Any5xx && status >= 500 && status <= 599 {
		return true
	}
	if c.GatewayError && (status == 502 || status == 503 || status == 504) {
		return true
	}
	return slices.Contains(c.Statuses, status)
}

// Match reports whether an attempt that ended with kind f (and status, when f is NoFailure or
// StatusFailure) matches.
func (c *Conditions) Match(f Failure, status int) bool {
	switch f {
	case ConnectError:
		return c.ConnectError
	case Timeout:
		return c.Timeout
	case Reset:
		return c.Reset
	case NoFailure, StatusFailure:
		return status != 0 && c.MatchStatus(status)
	}
	return false
}

// Classify returns the failure kind of an attempt's transport error (nil: NoFailure). parent is
// the caller's context. When it is done, the error is the caller's doing (Canceled), whatever the
// transport reports, unless a deadline the gateway set ran out (a route's request timeout): the
// target did not answer in time, a Timeout.
func Classify(parent context.Context, err error) Failure {
	if err == nil {
		return NoFailure
	}
	var cbe *ClientBodyError
	if errors.As(err, &cbe) {
		return Canceled // even past a deadline: the client was too slow to send
	}
	if parent != nil {
		if perr := parent.Err(); perr != nil {
			if errors.Is(perr, context.DeadlineExceeded) && !clientsDeadline(parent) {
				return Timeout
			}
			return Canceled
		}
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	// Before the timeouts: a dial or TLS handshake that timed out reached nothing, and
	// retry_on [connect_error], safe for any method, must retry it.
	if isConnectError(err) {
		return ConnectError
	}
	if IsTimeout(err) {
		return Timeout
	}
	return Reset
}

// isConnectError reports whether err is a failure to establish the connection: dialing
// (refused, unreachable, connect timeout), resolving the name, or the TLS handshake.
func isConnectError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	// Neither crypto/tls's errors nor net/http's handshake timeout are typed.
	msg := err.Error()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "TLS handshake timeout")
}

// clientDeadlineKey is the context key of the deadline a client set itself, a *time.Time: see
// MarkClientDeadline.
type clientDeadlineKey struct{}

// MarkClientDeadline records in sc, the Scope of a request whose deadline is *at, that this
// deadline is the client's own (a gRPC client's grpc-timeout, which the proxy applies so that
// the call is given up when the client has) rather than one the gateway set. An attempt cut by
// it is Canceled: a client's budget, however short, says nothing about the target, which must not
// be ejected or have its breaker opened for it. at is a pointer into the request's state, so
// that recording it costs no allocation; it must not change afterwards. MarkClientDeadline
// reports false, recording nothing, when sc has no room for the value (the deadline then counts
// as the gateway's).
func MarkClientDeadline(sc *reqctx.Scope, at *time.Time) bool {
	return sc.Set(clientDeadlineKey{}, at)
}

// clientsDeadline reports whether ctx's deadline is the one MarkClientDeadline recorded above
// it, rather than an earlier one the gateway set beneath (a fallback service's request timeout).
func clientsDeadline(ctx context.Context) bool {
	at, _ := ctx.Value(clientDeadlineKey{}).(*time.Time)
	if at == nil {
		return false
	}
	dl, ok := ctx.Deadline()
	return ok && !dl.Before(*at)
}

// IsTimeout reports whether err is a timeout: a deadline, a net.Error timeout, or net/http's
// response header timeout, which has no typed error.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return strings.Contains(err.Error(), "timeout awaiting response headers")
}

// outcome is one finished attempt.
type outcome struct {
	failure Failure
	status  int // 0 when there was no response
}

func newOutcome(parent context.Context, resp *http.Response, err error) outcome {
	if err != nil {
		return outcome{failure: Classify(parent, err)}
	}
	return outcome{status: resp.StatusCode}
}
