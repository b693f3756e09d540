package telemetry

import (
	"io"
	"strconv"
	"sync"
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
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
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
	b = strconv.AppendFloat(b, float64(r.Duration.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"upstream_ms":`...)
	b = strconv.AppendFloat(b, float64(r.Upstream.Microseconds())/1000, 'f', -1, 64)
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
	for i := 0; i < len(s); {
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
