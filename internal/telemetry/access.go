package telemetry

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// AccessRecord is one request as the access log sees it.
type AccessRecord struct {
	Time       time.Time
	RequestID  string
	ClientIP   string
	Method     string
	Host       string
	Path       string
	Proto      string
	Route      string
	Service    string
	Target     string
	Status     int
	Bytes      int64
	Duration   time.Duration
	Upstream   time.Duration
	ErrorCode  string
	UserAgent  string
	RemoteUser string
}

// Access log formats.
const (
	FormatJSON   = "json"
	FormatCommon = "common"
)

// AccessLogger writes one line per request, JSON or Common Log Format. Lines are built by hand
// into pooled buffers: the access log is on every request's path, and a general-purpose
// structured logger costs several times more.
type AccessLogger struct {
	w      io.Writer
	format string
	pool   sync.Pool
}

// NewAccessLogger writes lines to w (typically a BufferedWriter) in format.
func NewAccessLogger(w io.Writer, format string) *AccessLogger {
	if format == "" {
		format = FormatJSON
	}
	return &AccessLogger{w: w, format: format, pool: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

// Log writes rec.
func (l *AccessLogger) Log(rec *AccessRecord) {
	bp := l.pool.Get().(*[]byte)
	b := (*bp)[:0]
	if l.format == FormatCommon {
		b = appendCommon(b, rec)
	} else {
		b = appendJSON(b, rec)
	}
	_, _ = l.w.Write(b)
	if cap(b) <= 16<<10 {
		*bp = b
		l.pool.Put(bp)
	}
}

func appendJSON(b []byte, r *AccessRecord) []byte {
	b = append(b, `{"time":"`...)
	b = appendRFC3339Nano(b, r.Time)
	b = append(b, `","msg":"request"`...)
	b = appendField(b, "request_id", r.RequestID)
	b = appendField(b, "client_ip", r.ClientIP)
	b = appendField(b, "method", r.Method)
	b = appendField(b, "host", r.Host)
	b = appendField(b, "path", r.Path)
	b = appendField(b, "route", r.Route)
	b = appendField(b, "service", r.Service)
	b = appendField(b, "target", r.Target)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, r.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, r.Duration)
	b = append(b, `,"upstream_ms":`...)
	b = appendMillis(b, r.Upstream)
	if r.ErrorCode != "" {
		b = appendField(b, "error", r.ErrorCode)
	}
	return append(b, "}\n"...)
}

func appendField(b []byte, key, val string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return appendJSONString(b, val)
}

// appendJSONString quotes s as a JSON string; client-controlled text (host, path) can hold
// anything, so control characters, quotes and invalid UTF-8 are escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	// The run of bytes that need no escaping (most fields, whole) goes in one append.
	i := 0
	for i < len(s) {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			break
		}
		i++
	}
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendCommon writes the NCSA Common Log Format with the request ID appended:
// host ident authuser [date] "request" status bytes "request_id"
func appendCommon(b []byte, r *AccessRecord) []byte {
	b = appendCLFToken(b, r.ClientIP)
	b = append(b, " - "...)
	b = appendCLFToken(b, r.RemoteUser)
	b = append(b, " ["...)
	b = r.Time.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendCLFText(b, r.Method)
	b = append(b, ' ')
	b = appendCLFText(b, r.Path)
	b = append(b, ' ')
	b = appendCLFText(b, r.Proto)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.Bytes, 10)
	b = append(b, ` "`...)
	b = appendCLFText(b, r.RequestID)
	return append(b, "\"\n"...)
}

func appendCLFToken(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendCLFText(b, s)
}

// appendCLFText escapes quotes, backslashes and non-printable bytes so a line cannot be forged.
func appendCLFText(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return b
}

// secText is one second's "2006-01-02T15:04:05" text, shared by the lines logged in it.
type secText struct {
	sec  int64
	text []byte
}

var lastSec atomic.Pointer[secText]

// appendRFC3339Nano appends t in UTC as t.UTC().AppendFormat(b, time.RFC3339Nano) would: the
// date and time of day come from the last second formatted (an access log writes many lines a
// second), the fraction is written digit by digit without its trailing zeros.
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	st := lastSec.Load()
	if st == nil || st.sec != sec {
		st = &secText{sec: sec, text: t.AppendFormat(make([]byte, 0, 24), "2006-01-02T15:04:05")}
		lastSec.Store(st)
	}
	b = append(b, st.text...)
	b = appendFraction(b, int64(t.Nanosecond()), 9)
	return append(b, 'Z')
}

// appendFraction appends v (0 ≤ v < 10^digits) as a decimal fraction of digits places, "." and
// the digits without their trailing zeros, or nothing for 0.
func appendFraction(b []byte, v int64, digits int) []byte {
	if v == 0 {
		return b
	}
	var f [10]byte // '.' and up to 9 digits
	f[0] = '.'
	for i := digits; i >= 1; i-- {
		f[i] = byte('0' + v%10)
		v /= 10
	}
	n := digits + 1
	for f[n-1] == '0' {
		n--
	}
	return append(b, f[:n]...)
}

// appendMillis appends d in milliseconds to the microsecond, as
// strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', -1, 64) would ("0.552", "1.5",
// "12"), with integer arithmetic below 2^52 µs.
func appendMillis(b []byte, d time.Duration) []byte {
	us := d.Microseconds()
	if us >= 1<<52 || us <= -(1<<52) {
		// From 2^52 µs (143 years) the float form rounds the fraction: keep it there.
		return strconv.AppendFloat(b, float64(us)/1000, 'f', -1, 64)
	}
	if us < 0 {
		b = append(b, '-')
		us = -us
	}
	b = strconv.AppendInt(b, us/1000, 10)
	return appendFraction(b, us%1000, 3)
}
