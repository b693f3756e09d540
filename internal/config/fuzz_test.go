package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzLoad checks that no input makes Load panic and that every failure is a config.Errors of
// located FieldErrors.
func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"version: 1\n",
		"version: 1\nversion: 1\n",
		"version: 1\nlisteners: \":80\"\n",
		"version: [1\n",
		"listeners:\n  - name: a\n    address: ${A:-:80}\n  - name: $$b\n# ${C}\n",
		"version: 1\nlisteners: [{name: a, address: \":80\"}]\nroutes: [{name: r, match: {path: \"/u/{\"}, service: s}]\n",
		"routes:\n  - match:\n      headers: {X: {present: false}, Y: true, Z: [1]}\n      query: {q: {regex: \"(\"}}\n",
		"services:\n  - name: s\n    timeouts: {connect: -1s, request: [1]}\n    pool: {idle_timeout: {a: b}}\n",
		"server:\n  max_body_bytes: 99999999999999999999GiB\n  access_log: {buffer_size: ~, enabled: yes}\n",
		"a: &x {b: *x}\n<<: *x\n",
		"--- \n...\n---\nversion: 1\n",
		"routes:\n  - match:\n      headers:\n        X: !!str {regex: a}\n        ? [k]\n        : v\n",
		"${\n$${X}\n${X:-}\n${9}\n",
		"\x00\xff\t: :\n- - -\n",
	} {
		f.Add([]byte(s))
	}
	env := func(k string) (string, bool) {
		if k == "A" {
			return ":8080", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Load runs under a watchdog so that a hang is reported with its input instead of stalling
		// the fuzzer until -fuzztime runs out.
		var cfg *Config
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			cfg, err = Load("fuzz.yaml", data, env)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Load did not return within 10s on %q", data)
		}
		if err == nil {
			if cfg == nil {
				t.Fatal("Load returned neither a config nor an error")
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) {
			t.Fatalf("error is %T, want config.Errors: %v", err, err)
		}
		if len(es) == 0 {
			t.Fatal("empty config.Errors returned as an error")
		}
		for _, e := range es {
			if e == nil {
				t.Fatal("nil *FieldError in Errors")
			}
			if e.Line < 0 || e.Col < 0 {
				t.Fatalf("negative position in %q", e.Error())
			}
			if e.File != "fuzz.yaml" {
				t.Fatalf("error does not name the file: %q", e.Error())
			}
		}
	})
}
