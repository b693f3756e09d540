package config

import (
	"errors"
	"strings"
	"testing"
)

func TestFieldErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  FieldError
		want string
	}{
		{"full", FieldError{File: "gw.yaml", Line: 12, Col: 7, Path: "routes[1].service", Msg: `unknown service "nope"`},
			`gw.yaml:12:7: routes[1].service: unknown service "nope"`},
		{"no path", FieldError{File: "gw.yaml", Line: 4, Col: 15, Msg: "environment variable NOPE is not set"},
			"gw.yaml:4:15: environment variable NOPE is not set"},
		{"no position", FieldError{File: "gw.yaml", Path: "version", Msg: "must be 1"}, "gw.yaml: version: must be 1"},
		{"no file", FieldError{Line: 1, Col: 2, Path: "version", Msg: "must be 1"}, "1:2: version: must be 1"},
		{"message only", FieldError{Msg: "boom"}, "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAllValidationErrorsSorted checks that validation does not stop at the first problem and
// reports them in file order, whatever order the checks run in.
func TestAllValidationErrorsSorted(t *testing.T) {
	t.Parallel()
	const data = `version: 2
listeners:
  - name: main
    address: nope
server:
  trusted_proxies: [300.0.0.1]
services:
  - name: users
    targets:
      - url: ftp://x
    balancer: fastest
routes:
  - name: r1
    match:
      path: /a/**/b
    service: missing
  - name: r2
    match:
      path: /ok
      methods: ["G T"]
    service: users
    rewrite: /{id}
`
	_, err := Load("gw.yaml", []byte(data), noEnv)
	want := []wantErr{
		{1, 1, "version", "must be 1 (got 2)"},
		{4, 5, "listeners[0].address", "is not host:port"},
		{6, 21, "server.trusted_proxies[0]", "is not an IP address or CIDR"},
		{10, 9, "services[0].targets[0].url", "must use http or https"},
		{11, 5, "services[0].balancer", `unknown balancer "fastest"`},
		{15, 7, "routes[0].match.path", `"**" must be the last segment`},
		{16, 5, "routes[0].service", `unknown service "missing"`},
		{20, 17, "routes[1].match.methods[0]", "is not a valid HTTP method"},
		{22, 5, "routes[1].rewrite", "{id} is not a parameter"},
	}
	checkErrors(t, err, want)
	var es Errors
	if errors.As(err, &es) && err.Error() != joinErrors(es) {
		t.Errorf("Errors.Error() is not its entries joined by newlines:\n%s", err)
	}
}

func joinErrors(es Errors) string {
	s := ""
	for i, e := range es {
		if i > 0 {
			s += "\n"
		}
		s += e.Error()
	}
	return s
}

// TestDecodeStopsAtFirstError checks the other half of the contract: a file that does not decode
// reports one error, the first.
func TestDecodeStopsAtFirstError(t *testing.T) {
	t.Parallel()
	const data = "version: 1\nlisteners: [{name: a, address: \":1\"}]\nserver:\n  read_timeout: soon\n  idle_timeout: later\nextra: 1\n"
	_, err := Load("gw.yaml", []byte(data), noEnv)
	checkErrors(t, err, []wantErr{{4, 17, "server.read_timeout", `invalid duration "soon"`}})
}

// TestLoadFile covers the file-reading entry point: its errors name the path it was given.
func TestLoadFile(t *testing.T) {
	t.Parallel()
	if _, err := LoadFile("testdata/minimal.yaml"); err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if _, err := LoadFile("testdata/does-not-exist.yaml"); err == nil {
		t.Fatal("LoadFile of a missing file succeeded")
	}
}

// TestUnknownFieldsInFileOrder checks that of several unknown fields the first in the file is
// reported, every time (the decoder alone reports nested ones first, and picks among siblings in
// map order).
func TestUnknownFieldsInFileOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want wantErr
	}{
		{"top level before nested", "version: 1\nfoo: 1\nlisteners: [{name: a, address: \":1\", zap: 1}]\n",
			wantErr{2, 1, "foo", `unknown field "foo"`}},
		{"siblings", "version: 1\nlisteners: [{name: a, address: \":1\", zip: 1, zap: 2, zop: 3}]\n",
			wantErr{2, 38, "listeners[0].zip", `unknown field "zip"`}},
		{"type error before unknown field", "version: [1]\nfoo: 1\n",
			wantErr{1, 10, "version", "cannot unmarshal"}},
		{"in a list item", base + "    pool: {max_idle: 1}\n    colour: blue\n",
			wantErr{8, 12, "services[0].pool.max_idle", `unknown field "max_idle"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for range 20 {
				_, err := Load("gw.yaml", []byte(tc.yaml), noEnv)
				checkErrors(t, err, []wantErr{tc.want})
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestDecoderPanicIsAnError is the regression test for a nil dereference inside goccy/go-yaml
// found by FuzzLoad (testdata/fuzz/FuzzLoad/dea78923929c17a2): Load must return an error.
func TestDecoderPanicIsAnError(t *testing.T) {
	t.Parallel()
	_, err := Load("gw.yaml", []byte("services:\n  ! 0\n  - t"), noEnv)
	checkErrors(t, err, []wantErr{{0, 0, "", "malformed YAML"}})
}

func TestSyntaxHintForUnquotedPathTemplate(t *testing.T) {
	t.Parallel()
	_, err := Load("gw.yaml", []byte("version: 1\nroutes:\n  - { name: r, match: { path: /users/{id} } }\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `gw.yaml:3:`) || !strings.Contains(err.Error(), `quote values that contain braces`) {
		t.Fatalf("error %v: want a located syntax error with the quoting hint", err)
	}
}
