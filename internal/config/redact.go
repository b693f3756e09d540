package config

import (
	"net/url"
	"strings"
)

// redactedValue replaces a secret inside a value quoted by a validation message.
const redactedValue = "xxxxx"

// redactURL returns raw as a validation message may quote it: the password of its userinfo
// (or a lone userinfo, often the secret itself: redis://secret@host) and the values of its
// query are replaced by "xxxxx". Rejected configs are logged and shown by the admin API, and a
// value that fails validation may still hold a secret; the message only needs its shape.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Opaque == "" {
		if u.User == nil && u.RawQuery == "" {
			return raw // nothing to hide; keep the value exactly as written
		}
		if u.User != nil {
			if _, ok := u.User.Password(); !ok {
				u.User = url.User(redactedValue)
			}
		}
		if u.RawQuery != "" {
			q := u.Query()
			for _, vs := range q {
				for i := range vs {
					vs[i] = redactedValue
				}
			}
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	// Unparseable (a bad port, a stray character): cut the userinfo out by hand, i.e. what lies
	// between "//" (or the start) and the last "@" before the next "/".
	out := raw
	start := 0
	// "//" opens the authority only at the start or right after the scheme.
	if scheme, _, ok := strings.Cut(out, "//"); ok && (scheme == "" ||
		strings.HasSuffix(scheme, ":") && !strings.ContainsAny(scheme[:len(scheme)-1], ":/@?#")) {
		start = len(scheme) + 2
	}
	end := len(out)
	if i := strings.IndexByte(out[start:], '/'); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(out[start:end], '@'); at >= 0 {
		userinfo := out[start : start+at]
		masked := redactedValue
		if user, _, ok := strings.Cut(userinfo, ":"); ok {
			masked = user + ":" + redactedValue
		}
		out = out[:start] + masked + out[start+at:]
	}
	if q := strings.IndexByte(out, '?'); q >= 0 {
		tail := ""
		if f := strings.IndexByte(out[q:], '#'); f >= 0 {
			tail = out[q+f:]
		}
		out = out[:q+1] + redactedValue + tail
	}
	return out
}
