package h1

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/sockio"
)

// pool holds one target's connections: a LIFO stack of idle ones (the most recently used on
// top, so a burst's extra connections age at the bottom and expire), the count of open ones, and
// the requests waiting for a connection when MaxPerTarget is reached.
type pool struct {
	addr string // host:port to dial

	mu      sync.Mutex
	idle    []*conn // oldest first
	open    int     // idle + busy + being dialed
	waiters []chan *conn
	timer   *time.Timer // closes expired idle connections; nil when unarmed
	// closing is set by closeIdle (the pool's last user may have retired it): connections
	// freed afterwards are closed rather than kept, until a request uses the pool again.
	closing bool
	// maxOpen and idleTimeout are copies of the Transport's options, for the methods that
	// run outside a request.
	maxOpen     int
	idleTimeout time.Duration
}

// conn is one keep-alive connection. It is owned by one request at a time or by its pool.
type conn struct {
	p      *pool
	nc     net.Conn
	sio    sockio.Conn // nc's reads and writes (raw system calls on a socket)
	br     *bufio.Reader
	bw     *bufio.Writer
	abort  func() // closes nc; bound once so a request's AfterFunc does not allocate it
	reused bool
	// bodiless is set after a response without a body (HEAD, 204, 304): a target that sent
	// one anyway leaves stray bytes, so the connection is checked before its next use.
	bodiless bool
	idleAt   time.Time
	nread    int64 // bytes read from nc, to tell whether a response had started
	// headBudget is what may still be read while a response head is awaited (-1: no limit).
	headBudget int
	// head holds the response head being parsed, reused from one response to the next.
	head []byte
	// Deadlines. readDL and writeDL are what the exchange in progress wants on nc (zero:
	// none); rdl and wdl what was last set there. A read deadline is set just before a read
	// from nc (Read), so that a body that came whole with its head costs no change; a write
	// deadline just before a write waits for room (sockio's OnWriteWait), or ahead of the
	// write when lazyWrite is false.
	readDL, writeDL time.Time
	rdl, wdl        time.Time
	lazyWrite       bool
}

var errHeadTooLarge = errors.New("h1: response head too large")

// Read reads from the network connection for br, counting bytes and enforcing headBudget.
func (c *conn) Read(p []byte) (int, error) {
	if c.headBudget >= 0 {
		if c.headBudget == 0 {
			return 0, errHeadTooLarge
		}
		if len(p) > c.headBudget {
			p = p[:c.headBudget]
		}
	}
	if c.rdl != c.readDL {
		_ = c.nc.SetReadDeadline(c.readDL)
		c.rdl = c.readDL
	}
	n, err := c.sio.Read(p)
	c.nread += int64(n)
	if c.headBudget > 0 {
		c.headBudget -= n
	}
	return n, err
}

// applyWriteDeadline sets the write deadline the exchange wants, if it is not set yet.
func (c *conn) applyWriteDeadline() {
	if c.wdl != c.writeDL {
		_ = c.nc.SetWriteDeadline(c.writeDL)
		c.wdl = c.writeDL
	}
}

// setDeadlines gives the exchange about to start its write deadline (the request's, zero for
// none). A deadline left from an earlier exchange is replaced at once: one already past would
// fail the first write, even one that need not wait.
func (c *conn) setDeadlines(write time.Time) {
	c.writeDL = write
	if !c.lazyWrite || !c.wdl.IsZero() {
		c.applyWriteDeadline()
	}
}

// quiet is sockio.Conn.Quiet for an idle connection. A read deadline left from the last
// exchange that has passed while the connection sat idle, or is about to, is removed first: the
// peek would fail on it.
func (c *conn) quiet() bool {
	if !c.rdl.IsZero() && time.Until(c.rdl) < time.Second {
		_ = c.nc.SetReadDeadline(time.Time{})
		c.rdl = time.Time{}
	}
	return c.sio.Quiet()
}

// pool returns the pool of the target host[:port], creating it.
func (t *Transport) pool(host string) *pool {
	if p := (*t.pools.Load())[host]; p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.pools.Load()
	if p := old[host]; p != nil {
		return p
	}
	addr := host
	if _, port, err := net.SplitHostPort(host); err != nil || port == "" {
		addr = net.JoinHostPort(trimBrackets(host), "80")
	}
	p := &pool{addr: addr, maxOpen: t.o.MaxPerTarget, idleTimeout: t.o.IdleTimeout}
	m := maps.Clone(old)
	m[host] = p
	t.pools.Store(&m)
	return p
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// getConn returns an idle connection (unless fresh) or dials one, waiting for a free slot
// when the pool is at MaxPerTarget.
func (t *Transport) getConn(ctx context.Context, p *pool, fresh bool) (*conn, error) {
	p.mu.Lock()
	p.closing = false
	if !fresh {
		if c := p.popIdle(); c != nil {
			p.mu.Unlock()
			return c, nil
		}
	}
	if p.maxOpen > 0 && p.open >= p.maxOpen {
		ch := make(chan *conn, 1)
		p.waiters = append(p.waiters, ch)
		p.mu.Unlock()
		select {
		case c := <-ch:
			if c != nil {
				return c, nil
			}
			// nil: a slot was handed over (already counted in open); dial below.
		case <-ctx.Done():
			p.mu.Lock()
			removed := false
			for i, w := range p.waiters {
				if w == ch {
					p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
					removed = true
					break
				}
			}
			p.mu.Unlock()
			if !removed {
				// Handed something at the last moment: give it back.
				if c := <-ch; c != nil {
					p.put(c, t.o)
				} else {
					p.releaseSlot()
				}
			}
			return nil, ctx.Err()
		}
	} else {
		p.open++
		p.mu.Unlock()
	}
	nc, err := t.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		p.releaseSlot()
		return nil, err
	}
	c := &conn{p: p, nc: nc, headBudget: -1}
	c.sio.Init(nc)
	c.lazyWrite = c.sio.OnWriteWait(c.applyWriteDeadline)
	c.br = bufio.NewReaderSize(c, 4<<10)
	c.bw = bufio.NewWriterSize(&c.sio, 4<<10)
	c.abort = func() { _ = nc.Close() }
	return c, nil
}

// popIdle takes the most recently used idle connection that has not expired; expired ones are
// closed. p.mu is held.
func (p *pool) popIdle() *conn {
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	c := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	if p.idleTimeout > 0 && time.Since(c.idleAt) > p.idleTimeout {
		// The top is the youngest: every idle connection has expired.
		expired := append(p.idle, c)
		p.idle = nil
		p.open -= len(expired)
		for _, e := range expired {
			_ = e.nc.Close()
		}
		p.grantSlots()
		return nil
	}
	c.reused = true
	return c
}

// put returns a connection whose exchange is complete: to a waiting request, to the idle stack,
// or, when that is full or the pool was closed since, it closes it.
func (p *pool) put(c *conn, o Options) {
	p.mu.Lock()
	if len(p.waiters) > 0 {
		ch := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.mu.Unlock()
		c.reused = true
		c.idleAt = time.Now()
		ch <- c
		return
	}
	if p.closing || len(p.idle) >= o.MaxIdlePerTarget {
		p.open--
		p.mu.Unlock()
		_ = c.nc.Close()
		return
	}
	c.idleAt = time.Now()
	p.idle = append(p.idle, c)
	if p.idleTimeout > 0 && p.timer == nil {
		p.timer = time.AfterFunc(p.idleTimeout, p.sweep)
	}
	p.mu.Unlock()
}

// closeConn closes a connection that is not in the idle stack and frees its slot.
func (p *pool) closeConn(c *conn) {
	_ = c.nc.Close()
	p.releaseSlot()
}

// releaseSlot forgets one open connection and lets a waiting request dial in its place.
func (p *pool) releaseSlot() {
	p.mu.Lock()
	p.open--
	p.grantSlots()
	p.mu.Unlock()
}

// grantSlots hands free slots to waiting requests, which then dial. p.mu is held.
func (p *pool) grantSlots() {
	for len(p.waiters) > 0 && (p.maxOpen <= 0 || p.open < p.maxOpen) {
		ch := p.waiters[0]
		p.waiters = p.waiters[1:]
		p.open++
		ch <- nil
	}
}

// sweep closes idle connections that have expired and re-arms the timer for the oldest left.
func (p *pool) sweep() {
	p.mu.Lock()
	var expired []*conn
	now := time.Now()
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idleAt) >= p.idleTimeout {
		i++
	}
	if i > 0 {
		expired = append(expired, p.idle[:i]...)
		n := copy(p.idle, p.idle[i:])
		clear(p.idle[n:])
		p.idle = p.idle[:n]
		p.open -= i
		p.grantSlots()
	}
	if len(p.idle) > 0 && p.timer != nil {
		p.timer.Reset(p.idle[0].idleAt.Add(p.idleTimeout).Sub(now))
	} else {
		p.timer = nil
	}
	p.mu.Unlock()
	for _, c := range expired {
		_ = c.nc.Close()
	}
}

// closeIdle closes every idle connection and stops the timer.
func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.closing = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.grantSlots()
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.nc.Close()
	}
}
