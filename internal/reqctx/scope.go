// Package reqctx holds Scope, the one context.Context a request carries through the gateway.
//
// Before Scope, each layer wrapped the request's context in one of its own: the HTTP/1.x server
// a cancel context, the edge a value for the request's Info, the route a timeout, the proxy a
// client trace for 1xx responses, the upstream client a context.AfterFunc to abort its
// connection. That was six contexts, a map of children in two of them and a timer: about twenty
// allocations and a tenth of the gateway's own CPU per proxied request. A Scope is all of them
// in one object:
//
//   - cancellation, with a Done channel made only when someone asks for it;
//   - a deadline, fixed at creation, whose timer is started only when something waits for it
//     (Done, AfterFunc, OnCancel); Err reports it from the clock alone;
//   - a few values stored in the Scope itself (Set) instead of one context per value;
//   - OnCancel, for the gateway's own hooks (the upstream client's abort), without the closure
//     and the registration context.AfterFunc costs;
//   - Interim, the hook the upstream client passes 1xx responses to.
//
// A Scope is an ordinary context.Context to everyone else: the standard library's WithCancel,
// WithTimeout and AfterFunc register with it through its AfterFunc method (no goroutine), and
// values it does not hold are looked up in its parent.
package reqctx

import (
	"context"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"
)

// Scope is the context of one request. Create it with New, WithDeadline or WithTimeout and call
// Cancel when the request is over. Set and Interim belong to the code that created the Scope or
// was handed it first, before it shares the Scope with other goroutines.
//
// One difference from the standard library's contexts: context.Cause looks for the standard
// library's own cancel context, so for a Scope it reports an ancestor's cause if there is such
// an ancestor, else Err. Gatehouse does not use causes.
//
// A value context over a Scope hides the Scope's AfterFunc method from the standard library,
// which then starts a goroutine for each context derived there; wrap such a context with Over,
// or put a child Scope on top (New).
type Scope struct {
	parent   context.Context
	deadline time.Time // zero: none; never changes after creation

	vals  [4]kv
	nvals int

	// Interim, when set, receives the upstream's interim (1xx) responses, 103 Early Hints
	// among them, as httptrace.ClientTrace.Got1xxResponse would; an error aborts the exchange.
	// The proxy sets it before it sends; the upstream client calls it on the same goroutine.
	// An interface rather than a func, so that setting it to a pointer costs no closure.
	Interim InterimSink

	canceled atomic.Bool // err is set
	mu       sync.Mutex
	err      error
	done     chan struct{}
	timer    *time.Timer
	hooks    []hook
	hookBuf  [2]hook
	seq      uint64
	// The link to the parent: up and upID when the parent is a Scope, unlink otherwise.
	up     *Scope
	upID   uint64
	unlink func() bool
}

type kv struct{ key, val any }

// InterimReader is implemented by an http.RoundTripper that passes interim responses to the
// Interim hook of the request's Scope (InterimHook) or to an httptrace.ClientTrace, whichever of
// the two is nearer to the request's context. A caller that knows its transport reads Interim
// sets it instead of wrapping the Scope in a client trace.
type InterimReader interface {
	ReadsScopeInterim()
}

// InterimSink receives interim (1xx) responses: see Scope.Interim.
type InterimSink interface {
	Interim(code int, header textproto.MIMEHeader) error
}

// InterimFunc is a function used as an InterimSink.
type InterimFunc func(code int, header textproto.MIMEHeader) error

// Interim calls f.
func (f InterimFunc) Interim(code int, header textproto.MIMEHeader) error { return f(code, header) }

// hook is something to do on cancellation: call f, or cancel a child Scope.
type hook struct {
	id    uint64
	f     func()
	child *Scope
}

var (
	_ context.Context = (*Scope)(nil)
	// The standard library's WithCancel, WithTimeout and AfterFunc use this interface to
	// register with a parent that is not one of its own contexts, instead of a goroutine.
	_ interface{ AfterFunc(func()) func() bool } = (*Scope)(nil)
)

// closedChan is the Done channel of a Scope canceled before anyone asked for one.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// New returns a Scope under parent: canceled when parent is, with parent's deadline, and
// looking up in parent the values it does not hold itself.
func New(parent context.Context) *Scope {
	s := new(Scope)
	s.Init(parent)
	return s
}

// Init makes s, a zero Scope, what New(parent) returns, for a Scope that lives inside a larger
// object allocated anyway (the HTTP/1.x server's and the proxy's per-request state): one
// allocation fewer. s must not be copied afterwards.
func (s *Scope) Init(parent context.Context) { s.init(parent, time.Time{}) }

// init sets a zero Scope up under parent, with deadline d (zero: parent's, if any) or parent's
// when that comes first.
func (s *Scope) init(parent context.Context, d time.Time) {
	s.parent = parent
	s.hooks = s.hookBuf[:0]
	s.deadline = d
	if pd, ok := parent.Deadline(); ok && (d.IsZero() || pd.Before(d)) {
		s.deadline = pd
	}
	s.link(parent)
}

// WithDeadline returns a Scope under parent that is also canceled at d (or at parent's
// deadline, if that comes first).
func WithDeadline(parent context.Context, d time.Time) *Scope {
	s := new(Scope)
	s.InitDeadline(parent, d)
	return s
}

// InitDeadline is Init for what WithDeadline(parent, d) returns.
func (s *Scope) InitDeadline(parent context.Context, d time.Time) { s.init(parent, d) }

// WithTimeout is WithDeadline(parent, time.Now().Add(d)).
func WithTimeout(parent context.Context, d time.Duration) *Scope {
	return WithDeadline(parent, time.Now().Add(d))
}

// link makes parent's cancellation cancel s. A parent Scope holds s as a child (no allocation);
// any other cancelable parent gets a context.AfterFunc.
func (s *Scope) link(parent context.Context) {
	// s is published to the parent's cancellation before up/upID/unlink are stored: hold s.mu
	// so that a concurrent cancel reads them only once they are set.
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := parent.(*Scope); ok {
		s.adopt(p)
		return
	}
	done := parent.Done()
	if done == nil {
		return
	}
	if err := parent.Err(); err != nil {
		s.setCanceled(err)
		return
	}
	// A Scope under value contexts only (a tracing span, a value that did not fit): the same
	// Done channel means nothing in between can cancel, so s is that Scope's child. The
	// standard library would find no cancelCtx and no AfterFunc method through the value
	// contexts and start a goroutine per child.
	if p := Beneath(parent); p != nil {
		s.adopt(p)
		return
	}
	s.unlink = context.AfterFunc(parent, func() { s.cancel(parent.Err()) })
}

// scopeKey makes Value return the Scope itself, for a Scope found under value contexts.
type scopeKey struct{}

// adopt makes s a child of p: canceled with it. No timer starts for p's deadline: s has it too
// (or an earlier one) and keeps it.
func (s *Scope) adopt(p *Scope) {
	id, ok := p.register(hook{child: s}, false)
	if !ok {
		s.setCanceled(p.Err())
		return
	}
	s.up, s.upID = p, id
}

// setCanceled marks a Scope that is canceled from its creation.
func (s *Scope) setCanceled(err error) {
	s.err = err
	s.done = closedChan
	s.canceled.Store(true)
}

// Deadline implements context.Context.
func (s *Scope) Deadline() (time.Time, bool) {
	return s.deadline, !s.deadline.IsZero()
}

// Done implements context.Context. The channel is made on the first call, and the deadline's
// timer is started then.
func (s *Scope) Done() <-chan struct{} {
	if !s.canceled.Load() && s.pastDeadline() {
		// Closed at once, as a context.WithDeadline's would be: a caller that polls Done
		// without waiting must see it.
		s.cancel(context.DeadlineExceeded)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
	}
	s.armLocked()
	return s.done
}

// Err implements context.Context. Past the deadline it reports context.DeadlineExceeded (and
// cancels the Scope) even when no timer was started.
func (s *Scope) Err() error {
	if !s.canceled.Load() {
		if !s.pastDeadline() {
			return nil
		}
		s.cancel(context.DeadlineExceeded)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// pastDeadline reads only the monotonic clock when the deadline carries a monotonic reading
// (time.Since; a time.Now would also read the wall clock).
func (s *Scope) pastDeadline() bool {
	return !s.deadline.IsZero() && time.Since(s.deadline) >= 0
}

// Value implements context.Context: the values Set on s, then parent's.
func (s *Scope) Value(key any) any {
	if key == (scopeKey{}) {
		return s
	}
	for i := range s.nvals {
		if s.vals[i].key == key {
			return s.vals[i].val
		}
	}
	return s.parent.Value(key)
}

// Set stores val under key in s, as context.WithValue would in a new context, so that s.Value
// (and every context derived from s) returns it. key must be comparable. Set must be called
// before s is shared with other goroutines. It reports false, storing nothing, when s already
// holds key or has no room left; the caller then wraps s with context.WithValue.
func (s *Scope) Set(key, val any) bool {
	if s.nvals == len(s.vals) {
		return false
	}
	for i := range s.nvals {
		if s.vals[i].key == key {
			return false
		}
	}
	s.vals[s.nvals] = kv{key, val}
	s.nvals++
	return true
}

// AfterFunc arranges for f to run (on the goroutine that cancels s) once s is canceled or its
// deadline passes, and returns a function that unregisters f, reporting whether it did so
// before f ran. It makes the standard library's WithCancel, WithTimeout and AfterFunc under a
// Scope register here instead of starting a goroutine per child.
func (s *Scope) AfterFunc(f func()) (stop func() bool) {
	id, ok := s.register(hook{f: f}, true)
	if !ok {
		go f()
		return func() bool { return false }
	}
	return func() bool { return s.Unregister(id) }
}

// OnCancel registers f to run (on the goroutine that cancels s) once s is canceled or its
// deadline passes, like AfterFunc without its allocations: the returned id is for Unregister.
// It reports false, registering nothing, when s is already canceled. f must be quick and must
// not block: it runs inline, while the canceling goroutine waits.
func (s *Scope) OnCancel(f func()) (id uint64, ok bool) {
	return s.register(hook{f: f}, true)
}

// OnCancelUntimed is OnCancel for a caller that enforces s's deadline by other means (the
// upstream client sets it on its connection's reads and writes): f runs when s is canceled, by
// Cancel, by a parent, or at the deadline if something else started its timer, but registering
// f does not start the timer, which then costs nothing.
func (s *Scope) OnCancelUntimed(f func()) (id uint64, ok bool) {
	return s.register(hook{f: f}, false)
}

// Unregister removes a hook OnCancel or OnCancelUntimed registered. It reports whether the hook was removed
// before s was canceled; false means it has run or is running.
func (s *Scope) Unregister(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.hooks {
		if s.hooks[i].id == id {
			last := len(s.hooks) - 1
			s.hooks[i] = s.hooks[last]
			s.hooks[last] = hook{}
			s.hooks = s.hooks[:last]
			return true
		}
	}
	return false
}

// register adds h unless s is canceled; arm starts the deadline's timer, so that h runs at the
// deadline too.
func (s *Scope) register(h hook, arm bool) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, false
	}
	s.seq++
	h.id = s.seq
	s.hooks = append(s.hooks, h)
	if arm {
		s.armLocked()
	}
	return h.id, true
}

// armLocked starts the deadline's timer, once. A deadline already past fires at once (on the
// timer's goroutine), which keeps cancellation out of callers that hold s.mu.
func (s *Scope) armLocked() {
	if s.timer != nil || s.deadline.IsZero() || s.err != nil {
		return
	}
	s.timer = time.AfterFunc(time.Until(s.deadline), s.expire)
}

func (s *Scope) expire() { s.cancel(context.DeadlineExceeded) }

// Cancel cancels s (with context.Canceled) and the Scopes and contexts derived from it, runs
// the registered hooks and releases s's timer and its link to its parent. Calls after the first
// do nothing.
func (s *Scope) Cancel() { s.cancel(context.Canceled) }

func (s *Scope) cancel(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	s.canceled.Store(true)
	if s.done == nil {
		s.done = closedChan
	} else {
		close(s.done)
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	// No hook can be added from now on (register sees err), so hooks is ours to run outside
	// the lock; Unregister finds nothing and reports that the hook ran.
	hooks := s.hooks
	s.hooks = nil
	up, upID, unlink := s.up, s.upID, s.unlink
	s.mu.Unlock()

	if up != nil {
		up.Unregister(upID)
	}
	if unlink != nil {
		unlink()
	}
	for i := range hooks {
		if c := hooks[i].child; c != nil {
			c.cancel(err)
		} else {
			hooks[i].f()
		}
	}
}

// String describes s for debugging, as the standard library's contexts do.
func (s *Scope) String() string { return "reqctx.Scope" }

// InterimHook returns the Interim hook of s or of the nearest Scope above it that s is
// canceled with (a per-try or deadline Scope made under the one the proxy set it on), and the
// Scope that holds it; nil when there is none. The walk does not cross a context that cancels on
// its own or not at all (WithoutCancel): a hook beyond it belongs to another exchange.
func (s *Scope) InterimHook() (hook InterimSink, holder *Scope) {
	for c := s; c != nil; c = Beneath(c.parent) {
		if c.Interim != nil {
			return c.Interim, c
		}
	}
	return nil, nil
}

// Over returns ctx, a value context (or chain of them) directly over s, with s's AfterFunc
// method, so that the standard library registers contexts derived from it with s instead of
// starting a goroutine. Nothing between ctx and s may be cancelable.
func Over(ctx context.Context, s *Scope) context.Context { return over{ctx, s} }

type over struct {
	context.Context
	s *Scope
}

func (o over) AfterFunc(f func()) func() bool { return o.s.AfterFunc(f) }

// Beneath returns the Scope ctx is, or the one under ctx when only value contexts lie between
// them (nothing that could cancel on its own), else nil. Registering with that Scope is then the
// same as registering with ctx, without the goroutine the standard library would start. For a
// value context it compares Done channels: the Scope's is made, and its deadline's timer
// started, as by any caller of Done.
func Beneath(ctx context.Context) *Scope {
	switch c := ctx.(type) {
	case *Scope:
		return c
	case over:
		return c.s
	}
	s, ok := ctx.Value(scopeKey{}).(*Scope)
	if !ok || ctx.Done() != s.Done() {
		return nil
	}
	return s
}
