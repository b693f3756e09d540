package admin

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"sort"
	"strings"
)

// Redacted replaces every secret value in the admin API's view of the config.
const Redacted = "[REDACTED]"

// secretWords are the last words of field names whose values are secrets ("hmac_secret",
// "token", "password", consumer "keys").
var secretWords = map[string]bool{
	"token": true, "secret": true, "password": true, "passwd": true, "pwd": true, "credential": true,
	"credentials": true, "authorization": true, "keys": true, "apikey": true,
}

// secretHeaderWords are the same for map keys chosen by the user (header names in
// request_headers.set): there "X-Api-Key" and "Proxy-Authorization" are secrets. "cookie" is
// only here: a Cookie header's value is a credential, but a config field named cookie
// (routes[].plugins.jwt.cookie) holds a cookie's name, which hiding would only confuse.
var secretHeaderWords = map[string]bool{"key": true, "auth": true, "signature": true, "session": true, "cookie": true}

// secretQuery are query parameter names whose values are redacted inside URLs.
var secretQuery = map[string]bool{"password": true, "token": true, "secret": true, "key": true, "api_key": true, "apikey": true, "access_token": true, "sig": true, "signature": true}

func lastWord(name string) string {
	name = strings.ToLower(name)
	if i := strings.LastIndexAny(name, "_-. "); i >= 0 {
		return name[i+1:]
	}
	return name
}

// isSecretField reports whether a config field (by its YAML key) holds a secret.
func isSecretField(key string) bool { return secretWords[lastWord(key)] }

// isSecretStructField reports whether a struct field holds a secret: named like one, or tagged
// `redact:"values"`, a map whose every value is a credential (tracing.headers). Guessing from
// the key is not enough there: collectors name their credential headers freely (Honeycomb's is
// X-Honeycomb-Team).
func isSecretStructField(f reflect.StructField, key string) bool {
	return isSecretField(key) || f.Tag.Get("redact") == "values"
}

// isSecretMapKey reports whether a user-chosen map key (a header name) names a secret.
func isSecretMapKey(key string) bool {
	w := lastWord(key)
	return secretWords[w] || secretHeaderWords[w] || strings.Contains(strings.ToLower(key), "token")
}

// RedactConfig renders a config value (a *config.Config, or any struct with yaml tags) as
// JSON-ready data keyed by the YAML field names, in field order, with secrets replaced by
// Redacted: fields named like secrets, header values named like credentials, URL passwords
// ("redis://user:pass@host") and secret query parameters.
func RedactConfig(v any) any { return redactValue(reflect.ValueOf(v), false) }

type yamlMarshaler interface{ MarshalYAML() ([]byte, error) }

// object is a JSON object that keeps its keys in order.
type object []member

type member struct {
	key string
	val any
}

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(m.val)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func redactValue(v reflect.Value, secret bool) any {
	if !v.IsValid() {
		return nil
	}
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		return redactValue(v.Elem(), secret)
	}
	if v.CanInterface() {
		if m, ok := v.Interface().(yamlMarshaler); ok && v.Kind() != reflect.Struct || ok && !hasYAMLFields(v.Type()) {
			out, err := m.MarshalYAML()
			if err != nil {
				return nil
			}
			return redactString(string(out), secret)
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		o := object{}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if key == "" || key == "-" {
				continue
			}
			o = append(o, member{key, redactValue(v.Field(i), isSecretStructField(f, key))})
		}
		return o
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return []any{}
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = redactValue(v.Index(i), secret)
		}
		return out
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		o := object{}
		for _, k := range keys {
			ks := k.String()
			o = append(o, member{ks, redactValue(v.MapIndex(k), secret || isSecretMapKey(ks))})
		}
		return o
	case reflect.String:
		return redactString(v.String(), secret)
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return nil
}

// hasYAMLFields reports whether a struct type decodes from a mapping (its own fields), as
// opposed to a scalar value type with a custom marshaler such as Duration.
func hasYAMLFields(t reflect.Type) bool {
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); t.Field(i).IsExported() && tag != "" && tag != "-" {
			return true
		}
	}
	return false
}

func redactString(s string, secret bool) any {
	if secret {
		if s == "" {
			return ""
		}
		return Redacted
	}
	return redactURL(s)
}

// redactURL hides the password of a URL's userinfo and secret query parameters; other strings
// are returned unchanged.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		// Unparseable but URL-like: hide anything between "://" and a later "@".
		if i, j := strings.Index(s, "://"), strings.LastIndex(s, "@"); i >= 0 && j > i {
			return s[:i+3] + Redacted + s[j:]
		}
		return s
	}
	changed := false
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Redacted)
		} else if u.Scheme != "http" && u.Scheme != "https" {
			// redis://secret@host: a lone userinfo is the password there.
			u.User = url.User(Redacted)
		}
		changed = true
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			if secretQuery[strings.ToLower(k)] || isSecretField(k) {
				q[k] = []string{Redacted}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	if !changed {
		return s
	}
	out := u.String()
	// Keep the marker readable rather than percent-encoded.
	return strings.ReplaceAll(strings.ReplaceAll(out, url.QueryEscape(Redacted), Redacted), url.PathEscape(Redacted), Redacted)
}
