package store

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"
)

// CacheEntry is one stored HTTP response, or a Vary marker (Status 0) that says which request
// headers select among a URL's variants. Entries handed out by a CacheStore are shared: treat
// them as immutable.
type CacheEntry struct {
	// Status is the response status; 0 marks a Vary marker.
	Status int
	// Header holds the stored response headers (end-to-end only).
	Header http.Header
	// Body is the whole response body.
	Body []byte
	// RequestTime and ResponseTime bracket the upstream exchange (Unix nanoseconds); with the
	// response's Date and Age they give the entry's current age (RFC 9111 4.2.3).
	RequestTime, ResponseTime int64
	// Tags are the surrogate keys the entry is purged by.
	Tags []string
	// Vary lists, for a marker, the canonical request header names that select a variant; for
	// a response, the same names followed by the request's values (names then values).
	Vary []string
	// Nonce, for a marker, salts its variants' keys, so replacing or deleting the marker
	// orphans every variant at once.
	Nonce string
}

// CacheStore keeps cached responses under string keys. Keys have the form
// "c:<path?query> <route> <hash>[ <variant>]": the URL comes first so that purges by URL or
// URL prefix find every variant, the route second for purges limited to a route.
// Implementations never block a request for long: errors (wrapping ErrUnavailable when the
// backend is down) are returned promptly and callers proceed uncached.
type CacheStore interface {
	// Get returns the entry under key, or nil when there is none.
	Get(ctx context.Context, key string) (*CacheEntry, error)
	// Set stores e under key for ttl.
	Set(ctx context.Context, key string, e *CacheEntry, ttl time.Duration) error
	// Delete removes the entries under keys and returns how many existed.
	Delete(ctx context.Context, keys ...string) (int, error)
	// DeleteMatching removes every entry whose key starts with prefix and for which keep
	// (when not nil) returns true, and returns how many were removed.
	DeleteMatching(ctx context.Context, prefix string, keep func(key string) bool) (int, error)
	// DeleteTag removes every entry stored with tag and returns how many were removed.
	DeleteTag(ctx context.Context, tag string) (int, error)
}

// errCorrupt is returned for a stored value this version cannot decode.
var errCorrupt = errors.New("cache entry: undecodable value")

const entryVersion = 1

// EncodeEntry serializes e compactly (length-prefixed fields, no reflection), for stores that
// keep bytes.
func EncodeEntry(e *CacheEntry) []byte {
	n := 64 + len(e.Body) + len(e.Nonce)
	for k, vs := range e.Header {
		n += len(k) + 4
		for _, v := range vs {
			n += len(v) + 4
		}
	}
	for _, s := range e.Tags {
		n += len(s) + 4
	}
	for _, s := range e.Vary {
		n += len(s) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(e.Status))
	b = binary.AppendVarint(b, e.RequestTime)
	b = binary.AppendVarint(b, e.ResponseTime)
	b = appendStr(b, e.Nonce)
	b = appendList(b, e.Tags)
	b = appendList(b, e.Vary)
	b = binary.AppendUvarint(b, uint64(len(e.Header)))
	for k, vs := range e.Header {
		b = appendStr(b, k)
		b = appendList(b, vs)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Body)))
	return append(b, e.Body...)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(l)))
	for _, s := range l {
		b = appendStr(b, s)
	}
	return b
}

// DecodeEntry parses what EncodeEntry produced. It never panics on bad input.
func DecodeEntry(b []byte) (*CacheEntry, error) {
	d := decoder{b: b}
	if len(b) == 0 || b[0] != entryVersion {
		return nil, errCorrupt
	}
	d.b = b[1:]
	e := &CacheEntry{}
	e.Status = int(d.uvarint(1000))
	e.RequestTime = d.varint()
	e.ResponseTime = d.varint()
	e.Nonce = d.str()
	e.Tags = d.list()
	e.Vary = d.list()
	nh := d.uvarint(1 << 16)
	if d.err == nil {
		e.Header = make(http.Header, nh)
		for i := uint64(0); i < nh && d.err == nil; i++ {
			k := d.str()
			e.Header[k] = d.list()
		}
	}
	nb := d.uvarint(math.MaxInt32)
	if d.err != nil || nb != uint64(len(d.b)) {
		return nil, errCorrupt
	}
	if nb > 0 {
		e.Body = d.b
	}
	return e, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > limit {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint(math.MaxInt32)
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errCorrupt
	}
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) list() []string {
	n := d.uvarint(uint64(len(d.b)) + 1) // each element takes at least a byte
	if d.err != nil || n == 0 {
		return nil
	}
	l := make([]string, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		l = append(l, d.str())
	}
	return l
}

// entrySize estimates the memory an entry holds, for the memory store's byte bound.
func entrySize(key string, e *CacheEntry) int {
	n := 160 + len(key) + len(e.Body) + len(e.Nonce)
	for k, vs := range e.Header {
		n += len(k) + 32
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	for _, s := range e.Tags {
		n += len(s) + 16
	}
	for _, s := range e.Vary {
		n += len(s) + 16
	}
	return n
}

// hasTag reports whether e carries tag.
func hasTag(e *CacheEntry, tag string) bool {
	for _, t := range e.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// cacheKeyPrefix starts every cache key; CacheStore implementations reject other keys from
// prefix scans so that a purge can never touch another feature's keys.
const cacheKeyPrefix = "c:"

// validCacheKey reports whether key is one of the cache's keys.
func validCacheKey(key string) bool { return strings.HasPrefix(key, cacheKeyPrefix) }
