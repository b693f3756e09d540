package reqctx

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not done after 5s", what)
	}
}

func TestCancel(t *testing.T) {
	for _, early := range []bool{true, false} {
		s := New(context.Background())
		var before <-chan struct{}
		if early {
			before = s.Done()
			if isClosed(before) {
				t.Fatal("Done closed before Cancel")
			}
		}
		if err := s.Err(); err != nil {
			t.Fatalf("Err before Cancel = %v", err)
		}
		ran := 0
		id, ok := s.OnCancel(func() { ran++ })
		if !ok {
			t.Fatal("OnCancel refused on a live scope")
		}
		s.Cancel()
		s.Cancel() // a second call does nothing
		if ran != 1 {
			t.Fatalf("hook ran %d times, want 1", ran)
		}
		if s.Unregister(id) {
			t.Error("Unregister after the hook ran reported true")
		}
		if !errors.Is(s.Err(), context.Canceled) {
			t.Errorf("Err = %v, want Canceled", s.Err())
		}
		if !isClosed(s.Done()) || early && !isClosed(before) {
			t.Error("Done not closed after Cancel")
		}
		if _, ok := s.OnCancel(func() { ran++ }); ok || ran != 1 {
			t.Errorf("OnCancel after Cancel: ok=%v ran=%d", ok, ran)
		}
	}
}

func TestUnregister(t *testing.T) {
	s := New(context.Background())
	var ran []int
	ids := make([]uint64, 5)
	for i := range ids {
		ids[i], _ = s.OnCancel(func() { ran = append(ran, i) })
	}
	if !s.Unregister(ids[1]) || !s.Unregister(ids[3]) {
		t.Fatal("Unregister of a live hook reported false")
	}
	if s.Unregister(ids[1]) {
		t.Error("a second Unregister of the same hook reported true")
	}
	s.Cancel()
	got := map[int]bool{}
	for _, i := range ran {
		got[i] = true
	}
	if len(ran) != 3 || !got[0] || !got[2] || !got[4] {
		t.Errorf("hooks that ran: %v, want 0, 2 and 4 once each", ran)
	}
}

func TestDeadlineWithoutTimer(t *testing.T) {
	s := WithTimeout(context.Background(), 20*time.Millisecond)
	defer s.Cancel()
	d, ok := s.Deadline()
	if !ok || time.Until(d) > 20*time.Millisecond {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	if s.Err() != nil {
		t.Fatal("Err before the deadline")
	}
	if s.timer != nil {
		t.Fatal("a timer started although nothing waits")
	}
	time.Sleep(30 * time.Millisecond)
	if !errors.Is(s.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err after the deadline = %v", s.Err())
	}
	if !isClosed(s.Done()) {
		t.Error("Done not closed after Err reported the deadline")
	}
}

func TestDeadlineFiresHooksAndDone(t *testing.T) {
	s := WithTimeout(context.Background(), 30*time.Millisecond)
	fired := make(chan struct{})
	if _, ok := s.OnCancel(func() { close(fired) }); !ok {
		t.Fatal("OnCancel refused")
	}
	start := time.Now()
	waitClosed(t, fired, "hook at the deadline")
	waitClosed(t, s.Done(), "Done at the deadline")
	if el := time.Since(start); el < 25*time.Millisecond {
		t.Errorf("hook ran after %v, before the deadline", el)
	}
	if !errors.Is(s.Err(), context.DeadlineExceeded) {
		t.Errorf("Err = %v", s.Err())
	}
	s.Cancel()
	if !errors.Is(s.Err(), context.DeadlineExceeded) {
		t.Errorf("Cancel after the deadline changed Err to %v", s.Err())
	}
}

func TestPastDeadline(t *testing.T) {
	s := WithDeadline(context.Background(), time.Now().Add(-time.Second))
	if !errors.Is(s.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", s.Err())
	}
	s2 := WithDeadline(context.Background(), time.Now().Add(-time.Second))
	waitClosed(t, s2.Done(), "Done of a scope past its deadline")
}

func TestChildScope(t *testing.T) {
	parent := WithTimeout(context.Background(), time.Hour)
	defer parent.Cancel()
	child := WithTimeout(parent, 2*time.Hour)
	if pd, _ := parent.Deadline(); !child.deadline.Equal(pd) {
		t.Errorf("child deadline %v, want the parent's earlier %v", child.deadline, pd)
	}
	short := WithTimeout(parent, time.Minute)
	if !short.deadline.Before(parent.deadline) {
		t.Error("child's earlier deadline not kept")
	}
	if parent.timer != nil {
		t.Error("registering children started the parent's timer")
	}
	// A canceled child leaves the parent's hooks.
	short.Cancel()
	if n := len(parent.hooks); n != 1 {
		t.Fatalf("parent holds %d hooks after one of two children ended, want 1", n)
	}
	ran := false
	child.OnCancel(func() { ran = true })
	parent.Cancel()
	if !ran || !errors.Is(child.Err(), context.Canceled) || !isClosed(child.Done()) {
		t.Errorf("parent's Cancel did not reach the child: ran=%v err=%v", ran, child.Err())
	}
	late := New(parent)
	if !errors.Is(late.Err(), context.Canceled) || !isClosed(late.Done()) {
		t.Error("a scope under a canceled parent is not canceled")
	}
}

func TestForeignParent(t *testing.T) {
	pctx, pcancel := context.WithCancel(context.Background())
	s := New(pctx)
	fired := make(chan struct{})
	s.OnCancel(func() { close(fired) })
	pcancel()
	waitClosed(t, fired, "hook after the parent's cancel")
	if !errors.Is(s.Err(), context.Canceled) {
		t.Errorf("Err = %v", s.Err())
	}

	// A scope that ends first releases its AfterFunc on the parent (goleak checks the rest).
	pctx2, pcancel2 := context.WithTimeout(context.Background(), time.Hour)
	defer pcancel2()
	s2 := New(pctx2)
	if d, ok := s2.Deadline(); !ok || d.After(time.Now().Add(time.Hour)) {
		t.Errorf("parent's deadline not inherited: %v %v", d, ok)
	}
	s2.Cancel()
	if pctx2.Err() != nil {
		t.Error("canceling the scope canceled its parent")
	}

	dead, cancel := context.WithCancel(context.Background())
	cancel()
	if s3 := New(dead); !errors.Is(s3.Err(), context.Canceled) {
		t.Errorf("scope under a canceled parent: Err = %v", s3.Err())
	}
}

func TestStdlibChildren(t *testing.T) {
	s := New(context.Background())
	c1, cancel1 := context.WithCancel(s)
	defer cancel1()
	c2, cancel2 := context.WithTimeout(s, time.Hour)
	defer cancel2()
	ran := make(chan struct{})
	context.AfterFunc(s, func() { close(ran) })
	stopped := context.AfterFunc(s, func() { t.Error("a stopped AfterFunc ran") })
	if !stopped() {
		t.Fatal("stop reported false before cancel")
	}
	cancel1() // an ended child leaves s's hooks
	s.Cancel()
	waitClosed(t, c2.Done(), "WithTimeout child")
	waitClosed(t, ran, "AfterFunc")
	if !errors.Is(c2.Err(), context.Canceled) || !errors.Is(c1.Err(), context.Canceled) {
		t.Errorf("children: %v, %v", c1.Err(), c2.Err())
	}
	// WithoutCancel still sees the values.
	s2 := New(context.Background())
	s2.Set(keyA{}, "a")
	if v := context.WithoutCancel(s2).Value(keyA{}); v != "a" {
		t.Errorf("WithoutCancel lost the value: %v", v)
	}
}

type keyA struct{}
type keyB struct{}

func TestValues(t *testing.T) {
	parent := context.WithValue(context.Background(), keyA{}, "parent")
	s := New(parent)
	if v := s.Value(keyA{}); v != "parent" {
		t.Fatalf("parent value = %v", v)
	}
	if !s.Set(keyA{}, "scope") || !s.Set(keyB{}, 2) {
		t.Fatal("Set refused")
	}
	if s.Set(keyA{}, "again") {
		t.Error("Set of a key already held reported true")
	}
	if s.Value(keyA{}) != "scope" || s.Value(keyB{}) != 2 || s.Value("other") != nil {
		t.Errorf("values: %v %v %v", s.Value(keyA{}), s.Value(keyB{}), s.Value("other"))
	}
	if parent.Value(keyA{}) != "parent" {
		t.Error("Set changed the parent")
	}
	child := New(s)
	if child.Value(keyB{}) != 2 {
		t.Error("a child scope does not see its parent's values")
	}
	s.Set(3, 3)
	s.Set(4, 4)
	if s.Set(5, 5) {
		t.Error("Set beyond the scope's room reported true")
	}
	if s.Value(5) != nil {
		t.Error("a refused Set stored its value")
	}
	child.Cancel()
	s.Cancel()
}

// TestConcurrentCancel races registrations and unregistrations with Cancel: every hook either
// was unregistered in time (Unregister true) or ran, exactly once.
func TestConcurrentCancel(t *testing.T) {
	for range 50 {
		s := WithTimeout(context.Background(), time.Hour)
		const n = 8
		var ran [n]atomic.Int32
		var removed [n]bool
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				id, ok := s.OnCancel(func() { ran[i].Add(1) })
				if !ok {
					removed[i] = true // never registered
					return
				}
				if i%2 == 0 {
					removed[i] = s.Unregister(id)
				}
				_ = s.Err()
				_ = s.Done()
			})
		}
		wg.Go(s.Cancel)
		wg.Wait()
		for i := range n {
			switch r := ran[i].Load(); {
			case r > 1:
				t.Fatalf("hook %d ran %d times", i, r)
			case removed[i] && r != 0:
				t.Fatalf("hook %d ran after Unregister reported true", i)
			case !removed[i] && r != 1:
				t.Fatalf("hook %d neither ran nor was removed", i)
			}
		}
	}
}

// TestAllocs keeps a request's scope at one allocation when nothing waits on its Done channel.
func TestAllocs(t *testing.T) {
	f := func() {}
	got := testing.AllocsPerRun(200, func() {
		s := New(context.Background())
		s.Set(keyA{}, f)
		id, _ := s.OnCancel(f)
		_ = s.Err()
		s.Unregister(id)
		c := New(s)
		c.Cancel()
		s.Cancel()
	})
	if got > 2 {
		t.Errorf("%.1f allocations for a scope, a hook and a child scope, want 2", got)
	}
}

func BenchmarkScope(b *testing.B) {
	f := func() {}
	b.ReportAllocs()
	for b.Loop() {
		s := New(context.Background())
		c := WithTimeout(s, time.Minute)
		id, _ := c.OnCancel(f)
		_ = c.Err()
		c.Unregister(id)
		c.Cancel()
		s.Cancel()
	}
}

func BenchmarkStdlib(b *testing.B) {
	f := func() {}
	b.ReportAllocs()
	for b.Loop() {
		s, cancel := context.WithCancel(context.Background())
		c, cancel2 := context.WithTimeout(s, time.Minute)
		stop := context.AfterFunc(c, f)
		_ = c.Err()
		stop()
		cancel2()
		cancel()
	}
}

// A Scope under value contexts over a Scope is that Scope's child (no context.AfterFunc, whose
// registration would start a goroutine); one under a cancelable context in between is not.
func TestScopeUnderValueContext(t *testing.T) {
	root := New(context.Background())
	wrapped := context.WithValue(root, keyA{}, "v")
	child := New(wrapped)
	if child.up != root || child.unlink != nil {
		t.Fatalf("child under a value context: up=%p unlink set=%v, want adopted by the root", child.up, child.unlink != nil)
	}
	if child.Value(keyA{}) != "v" {
		t.Error("child lost the value context's value")
	}

	mid, cancelMid := context.WithCancel(root)
	other := New(context.WithValue(mid, keyB{}, 1))
	if other.up != nil || other.unlink == nil {
		t.Fatal("scope under a cancelable context was adopted past it")
	}
	cancelMid()
	waitClosed(t, other.Done(), "scope after its cancelable parent's cancel")
	if child.Err() != nil {
		t.Fatal("canceling a sibling context canceled the child")
	}
	root.Cancel()
	if !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("child after the root's cancel: %v", child.Err())
	}
}

// A Scope made while its parent is being canceled on another goroutine (the h1 server's
// client-gone watch cancels the request's Scope while the proxy makes its deadline Scope): the
// link to the parent must be complete before the parent's cancel can read it. Run with -race.
func TestLinkRacesParentCancel(t *testing.T) {
	for range 2000 {
		p := New(context.Background())
		go p.Cancel()
		c := WithDeadline(p, time.Now().Add(time.Hour))
		c.Cancel()
	}
	for range 2000 {
		parent, cancel := context.WithCancel(context.Background())
		go cancel()
		s := New(parent)
		<-s.Done()
	}
}

// Past the deadline, a look at Done that does not wait (net/http's Transport starts with one)
// sees a closed channel, as with context.WithDeadline, although no timer was running.
func TestDonePastDeadline(t *testing.T) {
	s := WithTimeout(context.Background(), time.Millisecond)
	defer s.Cancel()
	time.Sleep(20 * time.Millisecond)
	if !isClosed(s.Done()) {
		t.Fatal("Done open 20ms past the deadline")
	}
	if !errors.Is(s.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", s.Err())
	}
}

// Over gives a value context over a Scope the Scope's AfterFunc, so that the standard library
// registers children with the Scope instead of starting a goroutine each.
func TestOver(t *testing.T) {
	s := New(context.Background())
	wrapped := Over(context.WithValue(s, keyA{}, "v"), s)
	child, cancel := context.WithCancel(wrapped)
	defer cancel()
	if n := len(s.hooks); n != 1 {
		t.Fatalf("scope holds %d hooks after a stdlib child under Over, want 1", n)
	}
	if child.Value(keyA{}) != "v" {
		t.Error("value lost")
	}
	s.Cancel()
	waitClosed(t, child.Done(), "stdlib child under Over")
}

func TestBeneath(t *testing.T) {
	s := New(context.Background())
	defer s.Cancel()
	if Beneath(s) != s {
		t.Error("a Scope is not its own")
	}
	if Beneath(context.WithValue(context.WithValue(s, keyA{}, 1), keyB{}, 2)) != s {
		t.Error("Scope under value contexts not found")
	}
	if Beneath(Over(context.WithValue(s, keyA{}, 1), s)) != s {
		t.Error("Scope under Over not found")
	}
	mid, cancel := context.WithCancel(s)
	defer cancel()
	if Beneath(context.WithValue(mid, keyA{}, 1)) != nil {
		t.Error("Scope found past a cancelable context")
	}
	if Beneath(context.Background()) != nil {
		t.Error("Scope found where there is none")
	}
}

// TestInit: a Scope inside another object, made by Init, takes its parent's deadline, is
// canceled with its parent and cancels its own children, as one from New does.
func TestInit(t *testing.T) {
	parent := WithDeadline(context.Background(), time.Now().Add(time.Hour))
	var holder struct {
		n     int
		scope Scope
	}
	s := &holder.scope
	s.Init(parent)
	if d, ok := s.Deadline(); !ok || !d.Equal(parent.deadline) {
		t.Fatalf("Deadline = %v %v, want the parent's", d, ok)
	}
	child, cancel := context.WithCancel(s)
	defer cancel()
	parent.Cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the parent's cancellation did not reach the child of an embedded Scope")
	}
	if s.Err() != context.Canceled {
		t.Fatalf("Err = %v", s.Err())
	}
}
