package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/demo"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/middleware/auth"
	"github.com/golang-jwt/jwt/v5"
)

// listFlag collects a repeated string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// cmdToken signs a JWT for local testing. Without -secret-env or -secret-file it uses the demo
// issuer's public secret, so the token works against `gatehouse demo` only.
func cmdToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "1", "subject (sub claim)")
	iss := fs.String("iss", demo.JWTIssuer, "issuer (iss claim)")
	aud := fs.String("aud", demo.JWTAudience, "audience (aud claim); empty for none")
	ttl := fs.Duration("ttl", time.Hour, "lifetime (exp = now + ttl)")
	alg := fs.String("alg", "HS256", "HS256, HS384 or HS512")
	claim := fs.String("claim", "permissions", "claim the -perm values go into (a space-separated string when named scope)")
	secretEnv := fs.String("secret-env", "", "environment variable holding the HMAC secret (default: the demo secret)")
	secretFile := fs.String("secret-file", "", "file holding the HMAC secret (default: the demo secret)")
	var perms listFlag
	fs.Var(&perms, "perm", "permission to grant (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gatehouse token [-sub 1] [-perm users:read]... [-ttl 1h] [-secret-env NAME | -secret-file F]")
		fmt.Fprintln(stderr, "Prints an HMAC-signed JWT; with no secret flag it is signed for the demo issuer.")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	secret := []byte(demo.JWTSecret)
	switch {
	case *secretEnv != "" && *secretFile != "":
		fmt.Fprintln(stderr, "gatehouse token: give -secret-env or -secret-file, not both")
		return 2
	case *secretEnv != "":
		v, ok := os.LookupEnv(*secretEnv)
		if !ok || v == "" {
			fmt.Fprintf(stderr, "gatehouse token: environment variable %s is not set\n", *secretEnv)
			return 1
		}
		secret = []byte(v)
	case *secretFile != "":
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse token:", err)
			return 1
		}
		secret = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	method := jwt.GetSigningMethod(*alg)
	if method == nil || !strings.HasPrefix(*alg, "HS") {
		fmt.Fprintf(stderr, "gatehouse token: unsupported -alg %q (HS256, HS384, HS512)\n", *alg)
		return 2
	}
	if min := config.HMACMinBytes(*alg); len(secret) < min {
		// Signed all the same (the token may be for another verifier), but no gatehouse
		// would accept it: an issuer with this secret fails its config.
		fmt.Fprintf(stderr, "gatehouse token: warning: the secret is %d bytes; the gateway refuses %s secrets under %d bytes\n", len(secret), *alg, min)
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": *sub, "iss": *iss, "iat": now.Unix(), "exp": now.Add(*ttl).Unix()}
	if *aud != "" {
		claims["aud"] = *aud
	}
	if len(perms) > 0 {
		if *claim == "scope" {
			claims[*claim] = strings.Join(perms, " ")
		} else {
			claims[*claim] = []string(perms)
		}
	}
	tok, err := jwt.NewWithClaims(method, claims).SignedString(secret)
	if err != nil {
		fmt.Fprintln(stderr, "gatehouse token:", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// cmdHashKey prints the hash to store in auth.consumers[].keys for an API key. The key comes
// from the argument, or from standard input with "-" (keeps it out of shell history); with
// -generate a new random key is made and printed with its hash.
func cmdHashKey(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	gen := fs.Bool("generate", false, "generate a new random key and print it with its hash")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gatehouse hash-key <key> | gatehouse hash-key - (key on stdin) | gatehouse hash-key -generate")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *gen {
		if fs.NArg() != 0 {
			fs.Usage()
			return 2
		}
		key, err := auth.GenerateKey()
		if err != nil {
			fmt.Fprintln(stderr, "gatehouse hash-key:", err)
			return 1
		}
		fmt.Fprintf(stdout, "key:  %s\nhash: %s\n", key, auth.HashKey(key))
		return 0
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	key := fs.Arg(0)
	if key == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintln(stderr, "gatehouse hash-key:", err)
			return 1
		}
		key = strings.TrimRight(line, "\r\n")
	}
	if key == "" {
		fmt.Fprintln(stderr, "gatehouse hash-key: the key is empty")
		return 1
	}
	if len(key) < 20 {
		fmt.Fprintln(stderr, "gatehouse hash-key: warning: short keys can be guessed; use -generate for a 256-bit key")
	}
	fmt.Fprintln(stdout, auth.HashKey(key))
	return 0
}
