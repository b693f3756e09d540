package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// validateFiles checks the files the config names the way the gateway will open them at start,
// so that `gatehouse validate`, the admin validate endpoint and a reload refuse, at the field
// that names it, a file that `gatehouse run` would fail on later. Nothing is created: the
// access log's file is opened (and created) only by the server, so here only its directory
// must exist. Relative paths are resolved from the working directory, as the gateway does.
func (s *Source) validateFiles(add func(path, format string, args ...any)) {
	if checkFiles {
		checkConfigFiles(s.Config, add)
	}
}

// checkFiles is false only in this package's own tests: their configs (testdata/full.yaml)
// name certificates and secrets that exist on no test machine, and are there to test the
// decoding. checkConfigFiles has its own tests.
var checkFiles = true

func checkConfigFiles(c *Config, add func(path, format string, args ...any)) {
	for i, l := range c.Listeners {
		if l.TLS == nil {
			continue
		}
		p := fmt.Sprintf("listeners[%d].tls", i)
		for j, cert := range l.TLS.Certificates {
			checkKeyPair(add, fmt.Sprintf("%s.certificates[%d]", p, j), cert.Cert, cert.Key)
		}
		if ca := l.TLS.ClientAuth; ca != nil {
			for j, f := range ca.CA {
				checkCAFile(add, fmt.Sprintf("%s.client_auth.ca[%d]", p, j), f)
			}
		}
	}
	for i, svc := range c.Services {
		t := svc.TLS
		if t == nil {
			continue
		}
		p := fmt.Sprintf("services[%d].tls", i)
		for j, f := range t.CA {
			checkCAFile(add, fmt.Sprintf("%s.ca[%d]", p, j), f)
		}
		checkKeyPair(add, p, t.Cert, t.Key)
	}
	for i, r := range c.Routes {
		if g := r.GRPC; g != nil && g.Descriptors != "" {
			checkReadable(add, fmt.Sprintf("routes[%d].grpc.descriptors", i), g.Descriptors)
		}
	}
	for i := range c.Auth.Issuers {
		is := &c.Auth.Issuers[i]
		p := fmt.Sprintf("auth.issuers[%d]", i)
		if is.HMACSecretFile != "" && is.HMACSecret == "" {
			checkHMACSecretFile(add, p+".hmac_secret_file", is)
		}
		for j, f := range is.PublicKeys {
			checkReadable(add, fmt.Sprintf("%s.public_keys[%d]", p, j), f)
		}
	}
	if g := c.Server.Geo; g != nil && g.Database != "" {
		checkReadable(add, "server.geo.database", g.Database)
	}
	if al := c.Server.AccessLog; al.Enabled != nil && *al.Enabled && al.Output != "stdout" && al.Output != "stderr" {
		checkLogPath(add, "server.access_log.output", al.Output)
	}
}

// checkReadable reports a file that cannot be opened for reading. Only a regular file is
// opened: a FIFO would block the validation and a device such as /dev/zero never ends, and
// the admin validate endpoint runs this on configs posted to it. regular tells the callers
// whether the contents may be read for further checks.
func checkReadable(add func(path, format string, args ...any), path, file string) (regular bool) {
	fi, err := os.Stat(file)
	if err != nil {
		add(path, "cannot read %q: %v", file, unwrapPathError(err))
		return false
	}
	if fi.IsDir() {
		add(path, "%q is a directory", file)
		return false
	}
	if !fi.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(file)
	if err != nil {
		add(path, "cannot read %q: %v", file, unwrapPathError(err))
		return false
	}
	f.Close()
	return true
}

// readRegular returns the contents of a file that checkReadable found regular and readable.
func readRegular(add func(path, format string, args ...any), path, file string) ([]byte, bool) {
	if !checkReadable(add, path, file) {
		return nil, false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		add(path, "cannot read %q: %v", file, unwrapPathError(err))
		return nil, false
	}
	return data, true
}

// checkKeyPair checks a certificate and its key as the TLS listener and the upstream client
// load them: each file readable, and the two a matching pair. A missing half is reported by
// the validators that own the field.
func checkKeyPair(add func(path, format string, args ...any), path, cert, key string) {
	if cert == "" || key == "" {
		return
	}
	certOK := checkReadable(add, path+".cert", cert)
	keyOK := checkReadable(add, path+".key", key)
	if !certOK || !keyOK {
		return
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		add(path, "%s / %s: %v", cert, key, err)
	}
}

// checkCAFile checks a CA bundle holds at least one PEM certificate, as both the client_auth
// pool and the upstream root pool require.
func checkCAFile(add func(path, format string, args ...any), path, file string) {
	data, ok := readRegular(add, path, file)
	if ok && !x509.NewCertPool().AppendCertsFromPEM(data) {
		add(path, "%q holds no PEM certificates", file)
	}
}

// checkHMACSecretFile checks the file is readable and, like an inline hmac_secret, long enough
// for the issuer's HMAC algorithms: the gateway refuses a short one at start. Neither the
// secret nor its length appears in the message (the admin validate endpoint returns it).
func checkHMACSecretFile(add func(path, format string, args ...any), path string, is *Issuer) {
	data, ok := readRegular(add, path, is.HMACSecretFile)
	if !ok {
		return
	}
	n := len(strings.TrimRight(string(data), "\r\n"))
	for _, alg := range is.Algorithms {
		if min, ok := hmacAlgs[alg]; ok && n < min {
			add(path, "%q holds a secret shorter than the %d bytes %s needs", is.HMACSecretFile, min, alg)
			return
		}
	}
}

// checkLogPath checks a log file can be opened for appending later: its directory exists, and
// the path is not itself a directory.
func checkLogPath(add func(path, format string, args ...any), path, file string) {
	if fi, err := os.Stat(file); err == nil {
		if fi.IsDir() {
			add(path, "%q is a directory", file)
		}
		return
	}
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		add(path, "directory %q: %v", dir, unwrapPathError(err))
	case !fi.IsDir():
		add(path, "%q is not a directory", dir)
	}
}
