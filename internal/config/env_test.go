package config

import (
	"strings"
	"testing"
)

// TestEnvValuesAreText checks that an environment value is taken as text wherever the reference
// stands: it can neither be cut short (" #"), nor become an alias, a tag or a quoted scalar,
// nor add keys or nesting, and a value that cannot be kept whole is an error that does not
// show it.
func TestEnvValuesAreText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, value string
		get               func(*Config) any
		want              any
	}{
		{"comment marker", "admin: { token: ${V} }", "abcdefghijklmnop #qrstuvwxyz", adminToken, "abcdefghijklmnop #qrstuvwxyz"},
		{"block style", "admin:\n  token: ${V}\n", "abcdefghijklmnop #qrstuvwxyz", adminToken, "abcdefghijklmnop #qrstuvwxyz"},
		{"quotes kept", "admin:\n  token: ${V}\n", "'abcdefghijklmnopqrstuv'", adminToken, "'abcdefghijklmnopqrstuv'"},
		{"tag", "admin:\n  token: ${V}\n", "!!binary YWJjZGVmZ2hpamtsbW5vcA==", adminToken, "!!binary YWJjZGVmZ2hpamtsbW5vcA=="},
		{"alias", "admin:\n  token: ${V}\n", "*abcdefghijklmnopqrst", adminToken, "*abcdefghijklmnopqrst"},
		{"key injection", "admin:\n  address: ${V}\n  token: from-the-file-1234\n", "127.0.0.1:9901\n  token: injected-token-1234567890",
			func(c *Config) any { return c.Admin.Address + "|" + c.Admin.Token }, "127.0.0.1:9901\n  token: injected-token-1234567890|from-the-file-1234"},
		{"nesting", "admin:\n  token: ${V}\n", strings.Repeat("[", 1000), adminToken, strings.Repeat("[", 1000)},
		{"flow entry", "admin: { token: ${V}, address: \"127.0.0.1:1\" }", "a,b]c", adminToken, "a,b]c"},
		{"double-quoted", "admin:\n  token: \"x${V}y\"\n", "a\"b\\c\nd\te", adminToken, "xa\"b\\c\nd\tey"},
		{"single-quoted", "admin:\n  token: 'x${V}y'\n", "it's", adminToken, "xit'sy"},
		{"block scalar", "admin:\n  token: |\n    first\n    ${V}\n", "-----BEGIN-----\nAAAA\n-----END-----", adminToken, "first\n-----BEGIN-----\nAAAA\n-----END-----\n"},
		{"inside a plain scalar", "admin:\n  address: 127.0.0.1:${V}\n", "9901", func(c *Config) any { return c.Admin.Address }, "127.0.0.1:9901"},
		{"number stays a number", "listeners:\n  - { name: a, address: \":1\", redirect_https: true, https_port: ${V} }\n", "8443",
			func(c *Config) any { return c.Listeners[0].HTTPSPort }, 8443},
		{"reference in a comment", "admin:\n  token: abcdefghijklmnopq # was ${UNSET}\n", "", adminToken, "abcdefghijklmnopq"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := func(k string) (string, bool) { return tc.value, k == "V" }
			src, err := Decode("env.yaml", []byte("version: 1\n"+tc.yaml), env)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got := tc.get(src.Config); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func adminToken(c *Config) any { return c.Admin.Token }

func TestEnvValuesThatCannotBeKeptWhole(t *testing.T) {
	t.Parallel()
	const secret = "s3cret #value"
	tests := []struct{ name, yaml, want string }{
		{"part of a plain scalar", "admin:\n  token: abc${V}\n", "env.yaml:3:13: environment variable V holds characters that would change the YAML structure here"},
		{"line break in single quotes", "admin:\n  token: '${V}\n'", "env.yaml:3:11: environment variable V holds a line break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := secret
			if strings.Contains(tc.name, "line break") {
				v = "s3cret\nvalue"
			}
			_, err := Decode("env.yaml", []byte("version: 1\n"+tc.yaml), func(k string) (string, bool) { return v, k == "V" })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error shows the value: %v", err)
			}
		})
	}
}

// FuzzEnvValue checks that any value of ${V}, in a plain, flow or double-quoted scalar, either
// decodes to exactly that text or is refused with an error, never a panic; in a block scalar,
// that it never panics.
func FuzzEnvValue(f *testing.F) {
	for _, s := range []string{"", "abc", "a #b", "*x", "!!binary QQ==", "'q'", "\"d\"", "x\n  token: y", "[[[", "a: b", "-", "- x", "-5", "~", "null", "true", "é\t\\", "\x00\x7f"} {
		f.Add(s)
	}
	templates := []string{
		"version: 1\nadmin:\n  token: ${V}\n",
		"version: 1\nadmin: { token: ${V}, address: \"127.0.0.1:1\" }\n",
		"version: 1\nadmin:\n  token: \"${V}\"\n",
		"version: 1\nadmin:\n  token: !!str ${V}\n",
		"version: 1\nlisteners:\n  - name: |\n      x\n    address: \":1\"\nadmin:\n  token: ${V}\n",
	}
	f.Fuzz(func(t *testing.T, v string) {
		env := func(k string) (string, bool) { return v, k == "V" }
		for _, tpl := range templates {
			src, err := Decode("fuzz.yaml", []byte(tpl), env)
			if err != nil {
				continue
			}
			if got := src.Config.Admin.Token; got != v {
				t.Fatalf("template %q, value %q: decoded %q", tpl, v, got)
			}
		}
		_, _ = Decode("fuzz.yaml", []byte("version: 1\nadmin:\n  token: |\n    ${V}\n"), env)
	})
}
