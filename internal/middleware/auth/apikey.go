package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// HashKey returns the value to store in auth.consumers[].keys for an API key:
// "sha256:" and the hex SHA-256 of the key. API keys are long random strings (GenerateKey), so a
// fast unsalted hash is what protects them at rest, as with GitHub or Stripe tokens; a slow
// password hash would only add latency to every request.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return config.KeyHashPrefix + hex.EncodeToString(sum[:])
}

// GenerateKey returns a new random API key: "gh_" and 32 random bytes in URL-safe base64
// (256 bits).
func GenerateKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return "gh_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// consumer is a compiled auth.consumers entry.
type consumer struct {
	name        string
	tier        string
	permissions []string
	meta        map[string]string
	claims      map[string]any // meta as Identity.Claims
}

// consumerStore finds the consumer of an API key by the key's SHA-256. It is built once per
// distinct consumers config and shared by every route (and across reloads) through
// deps.Acquire.
type consumerStore struct {
	byHash map[cacheKey]*consumer
}

// Close implements io.Closer (nothing to release).
func (s *consumerStore) Close() error { return nil }

func consumersKey(cs []config.Consumer) string {
	b, _ := json.Marshal(cs)
	sum := sha256.Sum256(b)
	return "auth/consumers|" + hex.EncodeToString(sum[:])
}

func newConsumerStore(cs []config.Consumer) (*consumerStore, error) {
	s := &consumerStore{byHash: map[cacheKey]*consumer{}}
	for _, c := range cs {
		co := &consumer{name: c.Name, tier: c.Tier, permissions: c.Permissions, meta: c.Metadata, claims: map[string]any{}}
		for k, v := range c.Metadata {
			co.claims[k] = v
		}
		for _, k := range c.Keys {
			raw, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(k), config.KeyHashPrefix))
			if err != nil || len(raw) != sha256.Size {
				return nil, fmt.Errorf("consumer %s: invalid key hash", c.Name)
			}
			var h cacheKey
			copy(h[:], raw)
			s.byHash[h] = co
		}
	}
	return s, nil
}

// lookup returns the consumer owning key (nil if none) and the key's ID for logs: a prefix of
// its hash, never the key.
//
// The presented key is hashed first and only the digest is looked up, so no comparison ever
// runs on secret material: the lookup's timing depends on the SHA-256 of the caller's own input,
// which tells nothing about stored keys (a timing attack would need SHA-256 preimages). That is
// the constant-time property a byte-by-byte subtle.ConstantTimeCompare gives, without scanning
// every stored key.
func (s *consumerStore) lookup(key string) (*consumer, string) {
	h := sha256.Sum256([]byte(key))
	return s.byHash[h], hex.EncodeToString(h[:6])
}
